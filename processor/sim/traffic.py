"""Event Grid traffic as Azure ML workspaces and storage accounts produce it, then delivered the way Event Grid
delivers it: one-element arrays, each source in its subscription's schema, some events twice, some late. One
storage account is a data lake (hierarchical namespace): directories, renames and recursive deletes.

`lifecycle(...)` yields events in the order they happened; `deliver(...)` disorders them. Both are pure
functions of their seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

ML = "Microsoft.MachineLearningServices"
SUBSCRIPTION = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/ml-prod"
START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Message:
    body: bytes
    properties: dict[str, str]
    partition_key: str  # the subject, for subscriptions that key by subject
    event: dict  # the event as generated (Event Grid shape), for oracles in tests


def workspace_id(n: int) -> str:
    return f"{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/workspaces/ws-{n}"


def storage_id(n: int) -> str:
    return f"{SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts/mlstore{n}"


def _time(t: datetime, rng: random.Random) -> str:
    # Event Grid's own form: 7 fractional digits and Z.
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}{rng.randrange(10)}Z"


def lake_id(n: int) -> str:
    return f"{SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts/mllake{n}"


class _Lake:
    """A data lake account (hierarchical namespace), written the way a batch job writes one: each job creates
    a staging directory, writes part files (some as a temporary name, then renamed), then renames the whole
    directory into its table; old job directories are deleted recursively."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.jobs = 0
        self.staging: dict[int, list[str]] = {}  # job -> part names written
        self.published: list[str] = []  # directories under tables/

    def next(self) -> tuple[str, str, dict[str, Any]]:
        """(event type, path, data without sequencer) of the lake's next operation."""
        rng = self.rng
        url = "https://mllake0.dfs.core.windows.net/lake/"
        if not self.staging or rng.random() < 0.08:
            self.jobs += 1
            self.staging[self.jobs] = []
            path = f"staging/job-{self.jobs}"
            return "DirectoryCreated", path, {"api": "CreateDirectory", "url": url + path}
        job = rng.choice(list(self.staging))
        parts = self.staging[job]
        roll = rng.random()
        if self.published and roll < 0.04:
            path = self.published.pop(0)
            return "DirectoryDeleted", path, {"api": "DeleteDirectory", "url": url + path, "recursive": "true"}
        temporary = [p for p in parts if p.endswith(".tmp")]
        if temporary and roll < 0.6:
            source = temporary[0]
            parts[parts.index(source)] = source[: -len(".tmp")]
            data = {"api": "RenameFile", "sourceUrl": url + source, "destinationUrl": url + source[: -len(".tmp")]}
            return "BlobRenamed", source[: -len(".tmp")], data
        if len(parts) >= 3 and roll < 0.25:
            del self.staging[job]
            source, target = f"staging/job-{job}", f"tables/t{job % 4}/job-{job}"
            self.published.append(target)
            data = {"api": "RenameDirectory", "sourceUrl": url + source, "destinationUrl": url + target}
            return "DirectoryRenamed", target, data
        path = f"staging/job-{job}/part-{len(parts):04d}.parquet" + (".tmp" if rng.random() < 0.5 else "")
        parts.append(path)
        created: dict[str, object] = {
            "api": "FlushWithClose",
            "eTag": f"0x8D{rng.getrandbits(52):013X}",
            "contentType": "application/octet-stream",
            "contentLength": rng.randrange(1, 1 << 28),
            "contentOffset": 0,
            "blobType": "BlockBlob",
            "url": url + path,
        }
        return "BlobCreated", path, created


def lifecycle(n_events: int, seed: int = 7, workspaces: int = 2, accounts: int = 1) -> Iterator[dict]:
    """Events in happening order, in the Event Grid schema."""
    rng = random.Random(seed)
    clock = START
    blob_seq = 0x10000000000000000000
    made = 0
    lake = _Lake(random.Random(seed + 1))
    runs: list[list] = []  # [source, experiment, run id, next status index, outcome]
    models: dict[tuple[str, str], int] = {}
    blobs: list[tuple[int, str]] = []
    statuses = ["NotStarted", "Queued", "Preparing", "Running"]

    def event(source: str, etype: str, subject: str, data: dict) -> dict:
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "topic": source,
            "subject": subject,
            "eventType": etype,
            "eventTime": _time(clock, rng),
            "data": data,
            "dataVersion": "2",
            "metadataVersion": "1",
        }

    while made < n_events:
        clock += timedelta(microseconds=rng.randrange(200, 20_000))
        ws = workspace_id(rng.randrange(workspaces))
        roll = rng.random()
        if roll < 0.45:
            if not runs or (len(runs) < 400 and rng.random() < 0.3):
                exp = f"exp-{rng.randrange(40)}"
                runs.append(
                    [
                        ws,
                        exp,
                        f"run-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
                        0,
                        "Completed" if rng.random() < 0.8 else "Failed",
                    ]
                )
            i = rng.randrange(len(runs))
            source, exp, run_id, step, outcome = runs[i]
            data = {
                "experimentId": f"{exp}-id",
                "experimentName": exp,
                "runId": run_id,
                "runType": "azureml.scriptrun",
                "runTags": {"team": rng.choice(["vision", "nlp", "ranking"]), "step": str(step)},
                "runProperties": {"azureml.git.commit": f"{rng.getrandbits(40):010x}"},
            }
            subject = f"experiments/{exp}-id/runs/{run_id}"
            if step < len(statuses):
                yield event(source, f"{ML}.RunStatusChanged", subject, {**data, "runStatus": statuses[step]})
                runs[i][3] += 1
            else:
                yield event(source, f"{ML}.RunStatusChanged", subject, {**data, "runStatus": outcome})
                made += 1
                if outcome == "Completed" and made < n_events:
                    yield event(source, f"{ML}.RunCompleted", subject, data)
                runs.pop(i)
        elif roll < 0.55:
            name = f"model-{rng.randrange(60)}"
            version = models.get((ws, name), 0) + 1
            models[(ws, name)] = version
            yield event(
                ws,
                f"{ML}.ModelRegistered",
                f"models/{name}:{version}",
                {
                    "ModelName": name,
                    "ModelVersion": version if rng.random() < 0.5 else str(version),
                    "ModelTags": {"stage": rng.choice(["dev", "staging", "prod"])},
                    "ModelProperties": {"accuracy": f"{rng.random():.3f}"},
                },
            )
        elif roll < 0.62:
            service = f"svc-{rng.randrange(25)}"
            yield event(
                ws,
                f"{ML}.ModelDeployed",
                f"endpoints/{service}",
                {
                    "ServiceName": service,
                    "ServiceComputeType": rng.choice(["AKS", "ACI", "Managed"]),
                    "ModelIds": ",".join(
                        f"model-{rng.randrange(60)}:{rng.randrange(1, 9)}" for _ in range(rng.randrange(1, 3))
                    ),
                    "ServiceTags": {},
                    "ServiceProperties": {"replicas": str(rng.randrange(1, 5))},
                },
            )
        elif roll < 0.67:
            drift = f"drift-{rng.randrange(15)}"
            run_id = f"run-{rng.getrandbits(32):08x}"
            subject = f"datadrift/{drift}/run/{run_id}" if rng.random() < 0.5 else f"datadrifts/{drift}/runs/{run_id}"
            start = clock - timedelta(days=1)
            yield event(
                ws,
                f"{ML}.DatasetDriftDetected",
                subject,
                {
                    "DataDriftId": drift,
                    "DataDriftName": f"{drift}-monitor",
                    "RunId": run_id,
                    "BaseDatasetId": "base-ds",
                    "TargetDatasetId": "target-ds",
                    "DriftCoefficient": round(rng.random(), 4),
                    "StartTime": start.isoformat().replace("+00:00", "Z"),
                    "EndTime": clock.isoformat().replace("+00:00", "Z"),
                },
            )
        elif roll < 0.74:
            etype, path, data = lake.next()
            blob_seq += rng.randrange(1, 1 << 20)
            data = {
                **data,
                "clientRequestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "sequencer": f"{blob_seq:032X}",
                "identity": "$superuser",
                "storageDiagnostics": {"batchId": str(uuid.UUID(int=rng.getrandbits(128)))},
            }
            yield event(
                lake_id(0), f"Microsoft.Storage.{etype}", f"/blobServices/default/containers/lake/blobs/{path}", data
            )
        else:
            account = rng.randrange(accounts)
            source = storage_id(account)
            if blobs and rng.random() < 0.6:
                acct, path = rng.choice(blobs)
                source = storage_id(acct)
            else:
                acct, path = (
                    account,
                    f"datasets/{rng.choice(['train', 'eval', 'raw'])}/part-{rng.randrange(5000):05d}.parquet",
                )
                blobs.append((acct, path))
                if len(blobs) > 3000:
                    blobs.pop(0)
            blob_seq += rng.randrange(1, 1 << 20)
            deleting = rng.random() < 0.1
            data = {
                "api": "DeleteBlob" if deleting else "PutBlob",
                "clientRequestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "contentType": "application/octet-stream",
                "blobType": "BlockBlob",
                "url": f"https://mlstore{acct}.blob.core.windows.net/{path}",
                "sequencer": f"{blob_seq:032X}",
                "storageDiagnostics": {"batchId": str(uuid.UUID(int=rng.getrandbits(128)))},
            }
            if not deleting:
                data["eTag"] = f"0x8D{rng.getrandbits(52):013X}"
                data["contentLength"] = rng.randrange(1, 1 << 30)
            etype = "Microsoft.Storage.BlobDeleted" if deleting else "Microsoft.Storage.BlobCreated"
            path_container, _, rest = path.partition("/")
            yield event(source, etype, f"/blobServices/default/containers/{path_container}/blobs/{rest}", data)
        made += 1


def to_cloudevent(ev: dict) -> dict:
    return {
        "specversion": "1.0",
        "id": ev["id"],
        "source": ev["topic"],
        "subject": ev["subject"],
        "type": ev["eventType"],
        "time": ev["eventTime"],
        "datacontenttype": "application/json",
        "data": ev["data"],
    }


def deliver(
    events: Iterable[dict],
    seed: int = 11,
    duplicate_rate: float = 0.05,
    late_rate: float = 0.1,
    max_delay: int = 200,
    cloudevents_sources: frozenset[str] | None = None,
) -> Iterator[Message]:
    """Delivery as Event Grid does it: at least once, in no particular order.

    A late event is held back by up to `max_delay` positions; a duplicate is sent again a little later.
    Sources in `cloudevents_sources` (default: odd-numbered workspaces) are delivered as CloudEvents.
    """
    rng = random.Random(seed)
    held: list[tuple[int, dict]] = []
    position = 0

    def message(ev: dict) -> Message:
        ce = ev["topic"] in cloudevents_sources if cloudevents_sources is not None else ev["topic"][-1] in "13579"
        body = orjson.dumps([to_cloudevent(ev) if ce else ev])
        props = {
            "aeg-subscription-name": "PROCESSOR",
            "aeg-delivery-count": "0",
            "aeg-event-type": "Notification",
            "aeg-data-version": ev["dataVersion"],
            "aeg-metadata-version": ev["metadataVersion"],
            "aeg-output-event-id": ev["id"],
        }
        return Message(body, props, ev["subject"], ev)

    for ev in events:
        position += 1
        if rng.random() < late_rate:
            held.append((position + rng.randrange(1, max_delay + 1), ev))
        else:
            yield message(ev)
        if rng.random() < duplicate_rate:
            held.append((position + rng.randrange(0, max_delay + 1), ev))
        if held:
            ready = [h for h in held if h[0] <= position]
            if ready:
                held = [h for h in held if h[0] > position]
                for _, late in sorted(ready, key=lambda h: h[0]):
                    yield message(late)
    for _, late in sorted(held, key=lambda h: h[0]):
        yield message(late)
