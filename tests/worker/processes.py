"""Running `processor` commands as child processes: reading their stderr up to a line, knowing when they catch
a signal. Shared by the signal and failure tests of the worker."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from tests.worker.helpers import PROCESSOR

DEVHUB = PROCESSOR.with_name("devhub")  # the development tool: `devhub demo`


def catches(pid: int, sig: int = signal.SIGTERM) -> bool:
    """True once the process has a handler for `sig` (Linux: the SigCgt mask of /proc/PID/status). Before that
    instant no program can handle the signal: the kernel's default action ends it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except FileNotFoundError:
        pass
    return False


async def spawn(*args: str, env: dict, cwd: Path, program: Path = PROCESSOR) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(program),
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_until(proc: asyncio.subprocess.Process, text: str, timeout: float) -> list[str]:
    """The stderr lines up to and including the first that contains `text`; fails after `timeout` seconds."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = await asyncio.wait_for(proc.stderr.readline(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"no line with {text!r} within {timeout}s; got:\n" + "".join(lines)) from None
        if not line:
            raise AssertionError(f"stderr ended before a line with {text!r}; got:\n" + "".join(lines))
        lines.append(line.decode(errors="replace"))
        if text in lines[-1]:
            return lines


async def finish(proc: asyncio.subprocess.Process, timeout: float) -> tuple[int, str, str]:
    """Wait for the process to end: (exit code, stdout, rest of stderr); killed and failed after `timeout`."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"still running after {timeout}s; stderr:\n{err.decode(errors='replace')[-3000:]}"
        ) from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
