"""Reducers fold one event into an object's state.

A reducer may change the state it is given and return it: the fold hands it a private copy (the stored
row must stay intact, since a fold that loses a compare-and-set is redone from it). Reducers listed in
`STATELESS` build the state from the event alone, so only the last applied event of a batch needs them.
"""

from __future__ import annotations

from typing import Any, Callable

from processor.core.model import Admitted

State = dict[str, Any]


def _pick(data: dict, *names: str) -> Any:
    for name in names:
        if name in data:
            return data[name]
    return None


def _as_map(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def run(state: State | None, ev: Admitted) -> State:
    data = ev.event.data
    new = state if state is not None else {}
    for field, names in (
        ("experiment_id", ("experimentId", "ExperimentId")),
        ("experiment_name", ("experimentName", "ExperimentName")),
        ("run_id", ("runId", "RunId")),
        ("run_type", ("runType", "RunType")),
    ):
        value = _pick(data, *names)
        if value is not None:
            new[field] = value
    status = _pick(data, "runStatus", "RunStatus")
    if status is None and ev.event.type.endswith(".RunCompleted"):
        status = "Completed"
    if status is not None:
        new["status"] = status
        transitions = new.get("transitions")
        if type(transitions) is not dict:
            transitions = new["transitions"] = {}
        transitions[str(status)] = ev.time
    tags, props = _pick(data, "runTags", "RunTags"), _pick(data, "runProperties", "RunProperties")
    if tags is not None:
        new["tags"] = _as_map(tags)
    if props is not None:
        new["properties"] = _as_map(props)
    new["last_event_time"] = ev.time
    return new


def model(state: State | None, ev: Admitted) -> State:
    data = ev.event.data
    return {
        "name": _pick(data, "ModelName", "modelName"),
        "version": _pick(data, "ModelVersion", "modelVersion"),
        "tags": _as_map(_pick(data, "ModelTags", "modelTags")),
        "properties": _as_map(_pick(data, "ModelProperties", "modelProperties")),
        "registered_at": ev.time,
    }


def endpoint(state: State | None, ev: Admitted) -> State:
    data = ev.event.data
    ids = _pick(data, "ModelIds", "modelIds")
    if isinstance(ids, str):
        model_ids = [m.strip() for m in ids.split(",") if m.strip()]
    elif isinstance(ids, list):
        model_ids = [str(m) for m in ids]
    else:
        model_ids = []
    return {
        "service_name": _pick(data, "ServiceName", "serviceName"),
        "compute_type": _pick(data, "ServiceComputeType", "serviceComputeType"),
        "model_ids": model_ids,
        "tags": _as_map(_pick(data, "ServiceTags", "serviceTags")),
        "properties": _as_map(_pick(data, "ServiceProperties", "serviceProperties")),
        "deployed_at": ev.time,
    }


def datadrift(state: State | None, ev: Admitted) -> State:
    data = ev.event.data
    return {
        "data_drift_id": _pick(data, "DataDriftId", "dataDriftId"),
        "name": _pick(data, "DataDriftName", "dataDriftName"),
        "run_id": _pick(data, "RunId", "runId"),
        "base_dataset_id": _pick(data, "BaseDatasetId", "baseDatasetId"),
        "target_dataset_id": _pick(data, "TargetDatasetId", "targetDatasetId"),
        "drift_coefficient": _pick(data, "DriftCoefficient", "driftCoefficient"),
        "window": {"start": _pick(data, "StartTime", "startTime"), "end": _pick(data, "EndTime", "endTime")},
        "detected_at": ev.time,
    }


def blob(state: State | None, ev: Admitted) -> State:
    data = ev.event.data
    new = state if state is not None else {}
    deleted = ev.event.type.endswith(".BlobDeleted")
    new["deleted"] = deleted
    if ev.etag is not None:
        new["etag"] = ev.etag
    for field, name in (("url", "url"), ("api", "api"), ("blob_type", "blobType")):
        if name in data:
            new[field] = data[name]
    if not deleted:
        new["content_type"] = data.get("contentType")
        new["content_length"] = data.get("contentLength")
        new["created_at"] = ev.time
    else:
        new["deleted_at"] = ev.time
    return new


def replace(state: State | None, ev: Admitted) -> State:
    return {"data": ev.event.data, "time": ev.time}


def merge(state: State | None, ev: Admitted) -> State:
    data = (state or {}).get("data")
    data = data if type(data) is dict else {}
    data.update(ev.event.data)
    return {"data": data, "time": ev.time}


STATELESS = frozenset({"model", "endpoint", "datadrift", "replace"})

REDUCERS: dict[str, Callable[[State | None, Admitted], State]] = {
    "run": run,
    "model": model,
    "endpoint": endpoint,
    "datadrift": datadrift,
    "blob": blob,
    "replace": replace,
    "merge": merge,
}
