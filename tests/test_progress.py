"""Progress of long commands: a bar on a terminal only; elsewhere one log line a minute and no carriage return."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import struct
import subprocess
import termios

import orjson

from processor.cli.progress import Progress
from tests.test_cli import PROCESSOR, run


class FakeClock:
    """A fake clock: time moves when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_progress_is_a_log_line_a_minute_and_nothing_else(caplog):
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress("replay", total=1000, stream=stream, clock=clock)
    with caplog.at_level(logging.INFO, logger="processor.progress"):
        for done in range(0, 1001, 10):
            clock.now += 1.0  # 100 updates over 100 seconds
            progress.update(done)
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["replay: 590/1000 (59%) messages, 10/s over 60s"]
    assert stream.getvalue() == ""


def test_counted_passes_every_item_through_and_counts_them():
    progress = Progress("ingest", stream=io.StringIO(), clock=FakeClock())
    assert list(progress.counted(range(2500), every=1000)) == list(range(2500))
    assert progress.done == 2500


def test_ingest_draws_a_bar_on_a_terminal_and_none_into_a_pipe(tmp_path):
    lines = [b'{"n": %d}' % i for i in range(3000)]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    piped = run("ingest", "in.jsonl", "--json", cwd=tmp_path)
    assert piped.returncode == 0 and b"\r" not in piped.stderr
    assert orjson.loads(piped.stdout)["read"] == 3000

    # stderr a real terminal (a pseudo-terminal): the bar is drawn there, ending at the count.
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
    env["PROCESSOR_ALLOWED_SOURCES"] = ""
    proc = subprocess.Popen(
        [str(PROCESSOR), "ingest", "in.jsonl", "--json", "--store", "sqlite:///tty.sqlite"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the terminal's other end closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert b"\r" in drawn and b"ingest: " in drawn and b"3000 messages" in drawn
    assert orjson.loads(out)["read"] == 3000
