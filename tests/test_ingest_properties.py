"""Property tests of the whole file-ingest path, on a real SQLite store.

The oracle orders events by what they mean (true instants, integer versions, sequencer numbers), computed
here independently of the processor's own sequencer encoding.
"""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from processor.config import Settings
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.builders import ML, STORAGE, WS, body, ce, eg

BASE = datetime(2026, 1, 1, tzinfo=UTC)
WS2 = WS.replace("WS1", "ws2")


def time_text(seconds: int, style: int) -> str:
    """The same instant written the ways producers write it."""
    t = BASE + timedelta(seconds=seconds // 10, microseconds=(seconds % 10) * 100_000)
    if style == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # Event Grid's 7 digits
    if style == 1:
        return t.isoformat()  # +00:00
    if style == 2:
        return t.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@st.composite
def streams(draw):
    """A stream of events over a few objects, each (true sort key, event dict)."""
    n = draw(st.integers(1, 25))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["run", "model", "blob", "drift"]))
        obj = draw(st.integers(0, 2))
        source = draw(st.sampled_from([WS, WS2, WS.upper()]))
        eid = f"e{i:03d}"
        if kind == "run":
            secs = draw(st.integers(0, 6))
            status = draw(st.sampled_from(["Queued", "Running", "Completed", "Failed", None]))
            etype = f"{ML}.RunStatusChanged" if status else f"{ML}.RunCompleted"
            data = {"runId": f"r{obj}", "experimentId": "x", "runTags": {"i": i}}
            if status:
                data["runStatus"] = status
            ev = (eg, etype, f"experiments/x/runs/r{obj}", data, time_text(secs, draw(st.integers(0, 3))), source)
            key = (source.lower(), f"runs/r{obj}", secs)
        elif kind == "model":
            version = draw(st.integers(1, 12))
            data = {"ModelName": f"m{obj}", "ModelVersion": draw(st.sampled_from([version, str(version)]))}
            ev = (eg, f"{ML}.ModelRegistered", f"models/m{obj}:{version}", data, time_text(i, 0), source)
            key = (source.lower(), f"models/m{obj}", version)
        elif kind == "drift":
            secs = draw(st.integers(0, 6))
            subject = draw(st.sampled_from([f"datadrift/d{obj}/run/x{i}", f"datadrifts/d{obj}/runs/x{i}"]))
            data = {"DataDriftId": f"d{obj}", "DriftCoefficient": i / 100}
            ev = (eg, f"{ML}.DatasetDriftDetected", subject, data, time_text(secs, draw(st.integers(0, 3))), source)
            key = (source.lower(), f"datadrifts/d{obj}", secs)
        else:
            seq = draw(st.integers(0, 8))
            created = draw(st.booleans())
            data = {"sequencer": f"{seq:032X}", "contentLength": i, "url": f"u{obj}"}
            if created or draw(st.booleans()):
                data["eTag"] = f"etag-{draw(st.integers(0, 3))}"
            etype = "Microsoft.Storage.BlobCreated" if created else "Microsoft.Storage.BlobDeleted"
            ev = (eg, etype, f"/blobServices/default/containers/c/blobs/b{obj}", data, time_text(i, 0), STORAGE)
            key = (STORAGE.lower(), f"b{obj}", seq)
        events.append(((key, eid), ev, eid))
    return events


def render(spec, eid: str, cloud: bool) -> bytes:
    _, etype, subject, data, time, source = spec
    if cloud:
        return body(ce(etype, subject, data, time, id=eid, source=source))
    return body(eg(etype, subject, data, time, id=eid, topic=source))


async def project(lines: list[bytes], store: SqliteStore | None = None) -> list[dict]:
    own = store is None
    store = store or SqliteStore("sqlite:///:memory:")
    if own:
        await store.open()
    try:
        await ingest([(f"l{i}", b) for i, b in enumerate(lines)], Settings(), store)
        return [
            {
                k: getattr(r, k)
                for k in ("source", "object", "event_type", "event_id", "sequencer", "etag", "state", "updated_at")
            }
            async for r in store.export()
        ]
    finally:
        if own:
            await store.close()


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_permutation_with_duplicates_projects_like_the_stream_in_sequencer_order(data):
    stream = data.draw(streams())
    # Each event keeps one schema per source subscription... or not: a source may switch, the result must not care.
    cloud = {eid: data.draw(st.booleans()) for _, _, eid in stream}
    in_order = [render(spec, eid, cloud[eid]) for _, spec, eid in sorted(stream, key=lambda s: s[0])]
    shuffled = data.draw(st.permutations([render(spec, eid, cloud[eid]) for _, spec, eid in stream]))
    extra = data.draw(st.lists(st.sampled_from(shuffled), max_size=10))  # redeliveries
    positions = data.draw(st.lists(st.integers(0, len(shuffled)), min_size=len(extra), max_size=len(extra)))
    disordered = list(shuffled)
    for pos, line in zip(positions, extra):
        disordered.insert(pos, line)

    expected = without_time(asyncio.run(project(in_order)))
    assert without_time(asyncio.run(project(disordered))) == expected
    objects = [r for r in expected if r["state"].get("kind") != "container"]  # a container row per container
    assert len(objects) == len({s[0][0][:2] for s in stream})  # one row per object


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.randoms())
def test_ingesting_the_same_file_twice_changes_nothing(stream, rnd):
    lines = [render(spec, eid, False) for _, spec, eid in stream]
    rnd.shuffle(lines)

    async def twice():
        store = SqliteStore("sqlite:///:memory:")
        await store.open()
        try:
            first = await project(lines, store)
            second = await project(lines, store)
            return first, second
        finally:
            await store.close()

    first, second = asyncio.run(twice())
    assert second == first  # updated_at included: nothing was rewritten
