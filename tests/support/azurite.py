"""Azurite (blob service only) for tests that need a real checkpoint store.

    async with run_azurite(tmp_path) as azurite:
        store = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
        await azurite.create_container("checkpoints")
        await azurite.stop(); await azurite.start()   # outage: same port, same data folder

Azurite comes from npm (package.json / package-lock.json at the repo top). When it is missing the
helper raises AzuriteUnavailable telling how to install it; the pytest fixture turns that into a
test failure, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO / "node_modules" / ".bin" / "azurite-blob"

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key (public, documented by Microsoft).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_DEADLINE = 30.0


class AzuriteUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Azurite:
    def __init__(self, location: Path, port: int) -> None:
        self.location = location
        self.port = port
        self.process: asyncio.subprocess.Process | None = None
        self._log = location.parent / f"azurite-{port}.log"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    async def start(self) -> None:
        if self.process is not None and self.process.returncode is None:
            return
        check_installed()
        self.location.mkdir(parents=True, exist_ok=True)
        log = open(self._log, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(AZURITE_BLOB),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(self.location),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise AzuriteUnavailable(f"azurite-blob exited with code {self.process.returncode}:\n{self.log_tail()}")
            if await self._answers():
                return
            await asyncio.sleep(0.1)  # polling interval while waiting for the port, not synchronisation
        await self.stop()
        raise AzuriteUnavailable(
            f"azurite-blob did not answer on port {self.port} within {START_DEADLINE}s:\n{self.log_tail()}"
        )

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 1.0)
        except (TimeoutError, OSError):
            return False
        try:
            writer.write(f"GET /{ACCOUNT}?comp=list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 2.0)
            return line.startswith(b"HTTP/")
        except (TimeoutError, OSError):
            return False
        finally:
            writer.close()

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def create_container(self, name: str) -> None:
        # The checkpoint-store package vendors the storage SDK; reuse it rather than adding a dependency.
        from azure.eventhub.extensions.checkpointstoreblobaio._vendor.storage.blob.aio import ContainerClient

        async with ContainerClient.from_connection_string(self.connection_string, name) as client:
            await client.create_container()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no azurite log)"


def check_installed() -> None:
    if shutil.which("node") is None:
        raise AzuriteUnavailable(
            "Node.js is not installed: install Node.js (>= 18, e.g. 'apt-get install nodejs npm'), "
            "then run `./dev setup` (or `npm ci`) to install Azurite."
        )
    if not os.access(AZURITE_BLOB, os.X_OK):
        raise AzuriteUnavailable(
            f"Azurite is not installed ({AZURITE_BLOB} missing): run `./dev setup` (or `npm ci` "
            "at the repo top) and make sure Node.js is installed."
        )


@contextlib.asynccontextmanager
async def run_azurite(tmp_path: Path) -> AsyncIterator[Azurite]:
    azurite = Azurite(Path(tmp_path) / "azurite", free_port())
    try:
        await azurite.start()
        yield azurite
    finally:
        await azurite.stop()
