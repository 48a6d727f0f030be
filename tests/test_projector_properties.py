"""Property tests of the projector across batches, as the worker drives it (file ingest folds one batch).

Whatever the arrival order and however arrivals are cut into batches, each object ends at its greatest
(sequencer, event id) event, and the store never holds an object further back than before.
"""

import asyncio

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from processor.core.intake import Intake
from processor.core.model import Tally
from processor.events.catalog import Catalog
from processor.projector import Projector
from processor.stores.sqlite import SqliteStore
from tests.builders import blob_event, body, model_event, run_event

CATALOG = Catalog.default()


@st.composite
def events(draw):
    n = draw(st.integers(1, 30))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(["run", "model", "blob"]))
        obj = draw(st.integers(0, 2))
        eid = f"e{i:02d}"  # one id per distinct event; redeliveries are exact copies, added below
        if kind == "run":
            t = f"2026-01-01T00:00:0{draw(st.integers(0, 5))}Z"
            out.append(run_event(f"r{obj}", draw(st.sampled_from(["Queued", "Running", "Failed"])), t, id=eid + "r"))
        elif kind == "model":
            out.append(model_event(f"m{obj}", draw(st.integers(1, 6)), id=eid + "m"))
        else:
            # Every write of a blob has its own etag here: two events with one etag describe the same content,
            # and which of them stands depends on arrival order (documented in the README).
            seq = draw(st.integers(0, 6))
            out.append(
                blob_event(
                    f"b{obj}", f"{seq:032X}", created=draw(st.booleans()), etag=f"etag-{obj}-{seq}-{eid}", id=eid + "b"
                )
            )
    redelivered = draw(st.lists(st.sampled_from(out), max_size=8))
    return out + redelivered


def admitted(evs):
    tally = Tally()
    out = []
    intake = Intake(CATALOG)
    for ev in evs:
        got, dead = intake.admit(body(ev), tally)
        assert dead == []
        out += got
    return out


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_every_arrival_order_and_batching_ends_at_the_greatest_event_and_never_goes_back(evs, data):
    stream = admitted(evs)
    arrival = data.draw(st.permutations(stream))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(arrival)), max_size=6)))
    batches = [arrival[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrival)])]

    async def run():
        store = SqliteStore("sqlite:///:memory:")
        await store.open()
        try:
            projector = Projector(store, Tally())
            seen = {}
            for batch in batches:
                released = {}
                for ev in batch:
                    released.setdefault(ev.key, []).append(ev)
                for key in released:
                    released[key].sort(key=lambda e: e.order)  # what ReorderBuffer.release hands over
                await projector.apply(released, [])
                rows = await store.load(list({e.key for e in stream}))
                for key, row in rows.items():
                    assert row.order >= seen.get(key, ("", "")), f"{key} went back"
                    seen[key] = row.order
            return await store.load(list({e.key for e in stream}))
        finally:
            await store.close()

    rows = asyncio.run(run())
    greatest = {}
    for ev in stream:
        if ev.key not in greatest or ev.order > greatest[ev.key]:
            greatest[ev.key] = ev.order
    assert {k: r.order for k, r in rows.items()} == greatest
