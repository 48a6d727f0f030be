"""Event Grid traffic as Azure ML workspaces and storage accounts produce it, then delivered the way Event Grid
delivers it: one-element arrays, each source in its subscription's schema, some events twice, some late.

`lifecycle(...)` yields events in the order they happened; `deliver(...)` disorders them. Both are pure
functions of their seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


def lifecycle(n_events: int, seed: int = 7, workspaces: int = 2, accounts: int = 1) -> Iterator[dict]:
    """Events in happening order, in the Event Grid schema."""
    rng = random.Random(seed)
    clock = START
    blob_seq = 0x10000000000000000000
    made = 0
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
