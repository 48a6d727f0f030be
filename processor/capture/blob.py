"""The Capture files of a blob container, read as streams (a file may be 500 MB; it is never held whole).

The URL names the container and, optionally, a folder in it: `https://ACCOUNT.blob.core.windows.net/CONTAINER
[/PREFIX]`, or the path style of Azurite and other IP endpoints, `http://127.0.0.1:10000/ACCOUNT/CONTAINER
[/PREFIX]`. The credential: `capture.connection_string` when set (its endpoint wins over the URL's), else a SAS
in the URL's query, else DefaultAzureCredential (the identity needs Storage Blob Data Reader).

Reads synchronously: file ingest drives its input as a plain iterator, between the store's awaits. The storage
SDK retries transient failures itself; what still fails stops the run (CaptureError), as an outage must:
skipping would leave events out of the projection.

Imports the Azure storage SDK (and azure.identity), which is why only a URL brings this module in.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from processor.capture.layout import CaptureFile, Layout
from processor.capture.source import CaptureError


def split_url(url: str) -> tuple[str, str, str, str | None]:
    """(account URL, container, prefix, SAS) of a container URL; the prefix is a folder ("" or ending in /)."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        path_style = True
    except ValueError:
        path_style = host == "localhost"
    account = segments.pop(0) if path_style and segments else None
    if not segments:
        raise ValueError(f"{_shown(url)}: expected a container URL, https://ACCOUNT.blob.core.windows.net/CONTAINER")
    container = segments.pop(0)
    prefix = "/".join(segments) + "/" if segments else ""
    account_url = f"{parts.scheme}://{parts.netloc}" + (f"/{account}" if account else "")
    return account_url, container, prefix, parts.query or None


def _shown(url: str) -> str:
    return url.partition("?")[0]  # a SAS is a secret


class BlobSource:
    def __init__(self, url: str, connection_string: str | None):
        account_url, self.container_name, self.prefix, sas = split_url(url)
        self.shown = _shown(url)
        self.client: ContainerClient
        if connection_string:
            self.client = ContainerClient.from_connection_string(connection_string, self.container_name)
        else:
            credential: Any = sas
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self.client = ContainerClient(account_url, self.container_name, credential=credential)

    def files(self, layout: Layout) -> tuple[list[CaptureFile], list[str]]:
        found: list[CaptureFile] = []
        unmatched: list[str] = []
        try:
            for blob in self.client.list_blobs(name_starts_with=self.prefix or None):
                if not blob.name.endswith(".avro"):
                    continue
                name = f"{self.container_name}/{blob.name}"
                file = layout.parse(blob.name, name, blob.size or 0, blob.name)
                if file is None:
                    unmatched.append(name)
                else:
                    found.append(file)
        except AzureError as exc:
            raise CaptureError(self._problem(exc, "list")) from None
        return found, unmatched

    def open(self, file: CaptureFile) -> _BlobStream:
        try:
            return _BlobStream(self.client.download_blob(file.location, max_concurrency=1), file.name, self)
        except AzureError as exc:
            raise CaptureError(f"{file.name}: {self._problem(exc, 'read')}") from None

    def _problem(self, exc: AzureError, doing: str) -> str:
        where = f"container {self.container_name!r} at {self.shown}"
        if isinstance(exc, ResourceNotFoundError):
            return f"cannot {doing} the Capture files: the {where} (or the blob) does not exist"
        if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code == 403
        ):
            return (
                f"not allowed to {doing} the Capture files in the {where}: set PROCESSOR_CAPTURE_CONNECTION_STRING, "
                "a SAS in the URL, or give the identity the Storage Blob Data Reader role"
            )
        text = (getattr(exc, "message", None) or str(exc)).strip()
        return f"cannot {doing} the Capture files in the {where}: " + (text.splitlines() or [type(exc).__name__])[0]

    def close(self) -> None:
        self.client.close()


class _BlobStream:
    """A downloading blob as the file object fastavro reads; a failure of the service is not the file's."""

    def __init__(self, downloader: Any, name: str, source: BlobSource):
        self._downloader = downloader
        self._name = name
        self._source = source

    def read(self, size: int = -1) -> bytes:
        try:
            return self._downloader.read(size)
        except AzureError as exc:
            raise CaptureError(f"{self._name}: {self._source._problem(exc, 'read')}") from None

    def __enter__(self) -> _BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
