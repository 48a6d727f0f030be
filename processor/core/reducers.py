"""The default reducers, each a merge: what one event contributes to its object's state.

Per field the state keeps the value of the greatest (sequencer, id) event that carries the field; histories
(a run's status transitions, a model's versions) are unions. So an object's state is a function of the set
of its events, whatever order they arrive in (see `processor.core.merge`).
"""

from __future__ import annotations

from typing import Any

import orjson

from processor.core import namespace
from processor.core.merge import Contribution, MergeReducer
from processor.core.model import Admitted


def _pick(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in data:
            return data[name]
    return None


def _as_map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_RUN_FIELDS = (
    ("experiment_id", ("experimentId", "ExperimentId")),
    ("experiment_name", ("experimentName", "ExperimentName")),
    ("run_id", ("runId", "RunId")),
    ("run_type", ("runType", "RunType")),
)


def run(ev: Admitted) -> Contribution:
    data = ev.event.data
    latest: dict[str, Any] = {"last_event_time": ev.time}
    for field, names in _RUN_FIELDS:
        value = _pick(data, *names)
        if value is not None:
            latest[field] = value
    status = _pick(data, "runStatus", "RunStatus")
    if status is None and ev.event.type.endswith(".RunCompleted"):
        status = "Completed"
    earliest = {}
    if status is not None:
        latest["status"] = status
        # Each status with the time it was first reached, a late report included.
        earliest["transitions"] = {str(status): ev.time}
    tags, props = _pick(data, "runTags", "RunTags"), _pick(data, "runProperties", "RunProperties")
    if tags is not None:
        latest["tags"] = _as_map(tags)
    if props is not None:
        latest["properties"] = _as_map(props)
    return Contribution(latest=latest, earliest=earliest)


def model(ev: Admitted) -> Contribution:
    data = ev.event.data
    version = _pick(data, "ModelVersion", "modelVersion")
    return Contribution(
        latest={
            "name": _pick(data, "ModelName", "modelName"),
            "version": version,
            "tags": _as_map(_pick(data, "ModelTags", "modelTags")),
            "properties": _as_map(_pick(data, "ModelProperties", "modelProperties")),
            "registered_at": ev.time,
        },
        union={"versions": [version]} if version is not None else None,
    )


def endpoint(ev: Admitted) -> Contribution:
    data = ev.event.data
    ids = _pick(data, "ModelIds", "modelIds")
    if isinstance(ids, str):
        model_ids = [m.strip() for m in ids.split(",") if m.strip()]
    elif isinstance(ids, list):
        model_ids = [str(m) for m in ids]
    else:
        model_ids = []
    return Contribution(
        latest={
            "service_name": _pick(data, "ServiceName", "serviceName"),
            "compute_type": _pick(data, "ServiceComputeType", "serviceComputeType"),
            "model_ids": model_ids,
            "tags": _as_map(_pick(data, "ServiceTags", "serviceTags")),
            "properties": _as_map(_pick(data, "ServiceProperties", "serviceProperties")),
            "deployed_at": ev.time,
        }
    )


def datadrift(ev: Admitted) -> Contribution:
    data = ev.event.data
    return Contribution(
        latest={
            "data_drift_id": _pick(data, "DataDriftId", "dataDriftId"),
            "name": _pick(data, "DataDriftName", "dataDriftName"),
            "run_id": _pick(data, "RunId", "runId"),
            "base_dataset_id": _pick(data, "BaseDatasetId", "baseDatasetId"),
            "target_dataset_id": _pick(data, "TargetDatasetId", "targetDatasetId"),
            "drift_coefficient": _pick(data, "DriftCoefficient", "driftCoefficient"),
            "window": {"start": _pick(data, "StartTime", "startTime"), "end": _pick(data, "EndTime", "endTime")},
            "detected_at": ev.time,
        }
    )


def replace(ev: Admitted) -> Contribution:
    return Contribution(latest={"data": ev.event.data, "time": ev.time})


def merge(ev: Admitted) -> Contribution:
    data = ev.event.data
    return Contribution(latest={"time": ev.time}, latest_per_key={"data": data if type(data) is dict else {}})


REDUCERS: dict[str, MergeReducer] = {
    "run": MergeReducer("run", run, histories=frozenset({"transitions"})),
    "model": MergeReducer("model", model, histories=frozenset({"versions"})),
    "endpoint": MergeReducer("endpoint", endpoint),
    "datadrift": MergeReducer("datadrift", datadrift),
    # Blobs and directories (core/namespace.py): own fields per key, the timeline of lives; derived state.
    "blob": MergeReducer(
        "blob",
        namespace.contribute,
        per_key=frozenset({namespace.OWN, namespace.TIMELINE}),
        finish=namespace.finish,
        upgrade=namespace.upgrade,
    ),
    "replace": MergeReducer("replace", replace),
    "merge": MergeReducer("merge", merge, per_key=frozenset({"data"})),
}


_MISSING = object()


def _path_reader(path: str) -> Any:
    """A function event -> the value at `path`, or _MISSING where the event does not carry it."""
    if path == "time":
        return lambda ev: ev.time
    if path == "type":
        return lambda ev: ev.event.type
    if path == "subject":
        return lambda ev: ev.event.subject
    if path == "id":
        return lambda ev: ev.event.id
    if path == "data":
        return lambda ev: ev.event.data
    steps = path.split(".")[1:]

    def read(ev: Admitted) -> Any:
        value: Any = ev.event.data
        for step in steps:
            if type(value) is not dict or step not in value:
                return _MISSING
            value = value[step]
        return value

    return read


def declared(name: str, kinds: dict[str, dict[str, str]]) -> MergeReducer:
    """A user's reducer from its catalog declaration (checked by the catalog): a merge by construction."""
    readers = {kind: [(field, _path_reader(path)) for field, path in table.items()] for kind, table in kinds.items()}
    latest, per_key = readers.get("latest", []), readers.get("latest_per_key", [])
    earliest, union = readers.get("earliest", []), readers.get("union", [])

    def contribute(ev: Admitted) -> Contribution:
        c = Contribution()
        for field, read in latest:
            if (value := read(ev)) is not _MISSING:
                c.latest[field] = value
        for field, read in per_key:
            if type(value := read(ev)) is dict:
                c.latest_per_key[field] = value
        for field, read in earliest:
            if (value := read(ev)) is not _MISSING and value is not None:
                c.earliest[field] = {value if type(value) is str else orjson.dumps(value).decode(): ev.time}
        for field, read in union:
            if (value := read(ev)) is not _MISSING:
                c.union[field] = value if type(value) is list else [value]
        return c

    return MergeReducer(
        name, contribute, per_key=frozenset(f for f, _ in per_key), histories=frozenset(f for f, _ in earliest + union)
    )


def reducer_table(declarations: dict[str, dict[str, dict[str, str]]]) -> dict[str, MergeReducer]:
    """The built-in reducers and the user's, by name."""
    return {**REDUCERS, **{name: declared(name, kinds) for name, kinds in declarations.items()}}
