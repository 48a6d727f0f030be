"""Builders for Event Grid and CloudEvents bodies, as Azure sends them."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

WS = "/subscriptions/S1/resourceGroups/RG/providers/Microsoft.MachineLearningServices/workspaces/WS1"
STORAGE = "/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/acct1"
ML = "Microsoft.MachineLearningServices"
_ids = itertools.count(1)


def eg(
    etype: str,
    subject: str | None,
    data: Any,
    time: str | None = "2026-01-01T00:00:00.0000000Z",
    id: str | None = None,
    topic: str = WS,
    **extra: Any,
) -> dict:  # noqa: A002
    ev = {
        "id": id or f"id-{next(_ids):06d}",
        "topic": topic,
        "subject": subject,
        "eventType": etype,
        "eventTime": time,
        "data": data,
        "dataVersion": "1",
        "metadataVersion": "1",
        **extra,
    }
    return {k: v for k, v in ev.items() if v is not None}


def ce(
    etype: str,
    subject: str | None,
    data: Any,
    time: str | None = "2026-01-01T00:00:00.0000000Z",
    id: str | None = None,
    source: str = WS,
    **extra: Any,
) -> dict:  # noqa: A002
    ev = {
        "specversion": "1.0",
        "id": id or f"id-{next(_ids):06d}",
        "source": source,
        "subject": subject,
        "type": etype,
        "time": time,
        "data": data,
        **extra,
    }
    return {k: v for k, v in ev.items() if v is not None}


def body(*events: dict, array: bool = True) -> bytes:
    if not array:
        assert len(events) == 1
        return orjson.dumps(events[0])
    return orjson.dumps(list(events))


def run_event(run: str, status: str | None, time: str, exp: str = "exp1", **kw: Any) -> dict:
    etype = f"{ML}.RunStatusChanged" if status else f"{ML}.RunCompleted"
    data = {
        "experimentId": exp,
        "experimentName": "Exp",
        "runId": run,
        "runType": "script",
        "runTags": {"k": "v"},
        "runProperties": {"p": "1"},
    }
    if status:
        data["runStatus"] = status
    return eg(etype, f"experiments/{exp}/runs/{run}", data, time, **kw)


def model_event(name: str, version: Any, time: str = "2026-01-01T00:00:00Z", **kw: Any) -> dict:
    return eg(
        f"{ML}.ModelRegistered",
        f"models/{name}:{version}",
        {"ModelName": name, "ModelVersion": version, "ModelTags": {"t": str(version)}, "ModelProperties": {}},
        time,
        **kw,
    )


def blob_event(path: str, sequencer: str, created: bool = True, etag: str | None = "0x1", **kw: Any) -> dict:
    data: dict[str, Any] = {
        "api": "PutBlob" if created else "DeleteBlob",
        "sequencer": sequencer,
        "url": f"https://acct1.blob.core.windows.net/c/{path}",
        "contentType": "text/plain",
        "contentLength": 10,
        "blobType": "BlockBlob",
    }
    if etag:
        data["eTag"] = etag
    etype = "Microsoft.Storage.BlobCreated" if created else "Microsoft.Storage.BlobDeleted"
    return eg(etype, f"/blobServices/default/containers/c/blobs/{path}", data, topic=STORAGE, **kw)


# Storage events shaped as Microsoft's samples of "Azure Blob Storage as an Event Grid source" show them (ADLS
# Gen2 / SFTP variants included): diagnostics and request ids are there because Azure sends them.
ACCOUNT_URL = "https://acct1.dfs.core.windows.net"
_DIAG = {"batchId": "b3a1e0b4-0000-4000-8000-000000000000"}


def storage_subject(path: str, container: str = "c") -> str:
    return f"/blobServices/default/containers/{container}/blobs/{path}"


def storage_event(etype: str, path: str, data: dict[str, Any], time: str, seq: str, cloud: bool = False, **kw: Any):
    data = {
        "clientRequestId": "8a1b2c3d-0000-4000-8000-000000000000",
        "requestId": "1f2e3d4c-001e-0000-0000-000000000000",
        **data,
        "sequencer": seq,
        "identity": "$superuser",
        "storageDiagnostics": _DIAG,
    }
    make = ce if cloud else eg
    key = "source" if cloud else "topic"
    return make(f"Microsoft.Storage.{etype}", storage_subject(path), data, time, **{key: STORAGE}, **kw)


def hns_created(path: str, time: str, seq: str, length: int = 10, etag: str = "0x8D0000000000001", **kw: Any):
    data = {
        "api": "CreateFile",
        "eTag": etag,
        "contentType": "text/plain",
        "contentLength": length,
        "contentOffset": 0,
        "blobType": "BlockBlob",
        "url": f"{ACCOUNT_URL}/c/{path}",
    }
    return storage_event("BlobCreated", path, data, time, seq, **kw)


def hns_deleted(path: str, time: str, seq: str, **kw: Any):
    data = {"api": "DeleteFile", "contentType": "text/plain", "blobType": "BlockBlob", "url": f"{ACCOUNT_URL}/c/{path}"}
    return storage_event("BlobDeleted", path, data, time, seq, **kw)


def hns_renamed(source: str, destination: str, time: str, seq: str, directory: bool = False, **kw: Any):
    data = {
        "api": "RenameDirectory" if directory else "RenameFile",
        "sourceUrl": f"{ACCOUNT_URL}/c/{source}",
        "destinationUrl": f"{ACCOUNT_URL}/c/{destination}",
    }
    etype = "DirectoryRenamed" if directory else "BlobRenamed"
    return storage_event(etype, destination, data, time, seq, **kw)


def hns_dir_created(path: str, time: str, seq: str, **kw: Any):
    return storage_event(
        "DirectoryCreated", path, {"api": "CreateDirectory", "url": f"{ACCOUNT_URL}/c/{path}"}, time, seq, **kw
    )


def hns_dir_deleted(path: str, time: str, seq: str, recursive: bool = True, **kw: Any):
    data = {"api": "DeleteDirectory", "url": f"{ACCOUNT_URL}/c/{path}", "recursive": "true" if recursive else "false"}
    return storage_event("DirectoryDeleted", path, data, time, seq, **kw)
