"""ReorderBuffer: window release, bounds, duplicates, drops. Time is passed in, so no sleeping."""

from hypothesis import given
from hypothesis import strategies as st

from processor.core.model import Admitted
from processor.core.reorder import ReorderBuffer
from processor.events.envelope import EventGridEvent


def adm(obj: str, seq: str, eid: str | None = None, size: int = 10, origin=None) -> Admitted:
    ev = EventGridEvent(id=eid or f"{obj}-{seq}", source="src", subject="subj", type="T", time="t", data={})
    return Admitted(("src", obj), seq, None, "t", ev, "replace", size, origin)


def orders(released):
    return {k[1]: [e.sequencer for e in v] for k, v in released.items()}


def test_without_a_window_nothing_leaves_until_drained_then_all_in_order():
    buf = ReorderBuffer()
    for seq in ["3", "1", "2"]:
        assert buf.add(adm("a", seq))
    assert buf.release(now=1e9) == {}
    assert orders(buf.drain()) == {"a": ["1", "2", "3"]}
    assert len(buf) == 0 and buf.bytes == 0


def test_same_event_twice_from_one_origin_is_refused_from_two_origins_both_are_held():
    buf = ReorderBuffer()
    assert buf.add(adm("a", "1", "x", origin=("p0", 1, 5)))
    assert not buf.add(adm("a", "1", "x", origin=("p0", 1, 5)))
    # Another message's copy must finish that message: it is held too, and the fold counts it a duplicate.
    assert buf.add(adm("a", "1", "x", origin=("p1", 1, 9)))
    assert len(buf) == 2
    assert sorted(e.origin for e in buf.drain()[("src", "a")]) == [("p0", 1, 5), ("p1", 1, 9)]


def test_an_event_dropped_and_added_again_waits_its_own_window():
    buf = ReorderBuffer(window=1.0)
    buf.add(adm("a", "5", "e", origin=("p0", 1, 1)), now=0.0)
    buf.drop(lambda e: True)  # its partition was lost
    buf.add(adm("a", "5", "e", origin=("p0", 1, 1)), now=0.9)  # replayed by the next ownership
    assert buf.release(now=1.0) == {}  # the old arrival's deadline is not this one's
    assert buf.next_deadline() == 1.9
    assert orders(buf.release(now=1.9)) == {"a": ["5"]}


def test_window_releases_due_events_and_earlier_ones_of_the_same_object():
    buf = ReorderBuffer(window=2.0)
    buf.add(adm("a", "5"), now=0.0)
    buf.add(adm("a", "3"), now=1.0)  # earlier sequencer, later arrival
    buf.add(adm("a", "9"), now=1.5)
    buf.add(adm("b", "1"), now=1.9)
    assert buf.release(now=1.99) == {}
    # "5" is due; "3" goes with it (it would be stale after "5"); "9" and b wait their own window.
    assert orders(buf.release(now=2.0)) == {"a": ["3", "5"]}
    assert buf.next_deadline() == 3.5
    assert orders(buf.release(now=3.9)) == {"a": ["9"], "b": ["1"]}
    assert len(buf) == 0


def test_at_the_event_bound_the_oldest_arrivals_leave_early_until_there_is_room():
    buf = ReorderBuffer(window=60.0, max_events=2)
    buf.add(adm("a", "1"), now=0)
    assert not buf.over_bound()
    buf.add(adm("b", "1"), now=0)
    assert buf.over_bound()  # at the bound: the same test the worker's backpressure waits on
    buf.add(adm("c", "1"), now=0)
    assert orders(buf.release(now=0)) == {"a": ["1"], "b": ["1"]}
    assert len(buf) == 1 and not buf.over_bound()


def test_over_the_byte_bound_the_oldest_leaves_early_with_spare_room_made():
    buf = ReorderBuffer(window=None, max_events=100, max_bytes=25)
    for obj in "abc":
        buf.add(adm(obj, "1", size=10))
    assert orders(buf.release(spare=1)) == {"a": ["1"]}
    assert buf.bytes == 20


def test_drop_removes_without_releasing():
    buf = ReorderBuffer(window=1.0)
    buf.add(adm("a", "1", origin=("p0", 1)))
    buf.add(adm("a", "2", origin=("p1", 7)))
    dropped = buf.drop(lambda e: e.origin[0] == "p1")
    assert [e.sequencer for e in dropped] == ["2"]
    assert orders(buf.release(now=5)) == {"a": ["1"]}


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 50), st.floats(0, 10)), max_size=60), st.integers(1, 20)
)
def test_every_event_leaves_exactly_once_and_each_release_is_in_order(arrivals, bound):
    buf = ReorderBuffer(window=1.0, max_events=bound)
    # A multiset: an event that already left may arrive again (the fold, not the buffer, catches that one).
    seen, out = [], []
    now = 0.0
    for obj, seq, dt in arrivals:
        now += dt
        e = adm(obj, f"{seq:03d}")
        if buf.add(e, now):
            seen.append((obj, e.order))
        for key, evs in buf.release(now).items():
            assert [x.order for x in evs] == sorted(x.order for x in evs)
            out += [(key[1], x.order) for x in evs]
        assert len(buf) <= bound
    for key, evs in buf.drain().items():
        out += [(key[1], x.order) for x in evs]
    assert sorted(out) == sorted(seen)
