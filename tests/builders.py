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
