"""Hostile input costs one dead letter, never the stream (found in review: each of these used to crash the
worker into a restart loop, or hold the event loop for seconds)."""

import asyncio
import base64
import json

import orjson

from processor.config import Settings
from processor.core.intake import MAX_FIELD, OTHER_TYPE, Intake
from processor.core.model import Tally
from processor.events.catalog import Catalog
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.builders import ML, body, ce, eg, model_event, run_event


def admit(raw: bytes):
    tally = Tally()
    admitted, dead = Intake(Catalog.default()).admit(raw, tally)
    return admitted, dead, tally


async def ingest_lines(lines, tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/p.sqlite")
    await store.open()
    try:
        tally = await ingest([(f"l{i}", line) for i, line in enumerate(lines)], Settings(), store)
        return tally, {r.object: r async for r in store.export()}, await store.dead_letters()
    finally:
        await store.close()


def test_a_time_whose_offset_leaves_the_calendar_is_dead_lettered():
    for t in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00"):
        admitted, [dead], _ = admit(body(run_event("r", "Running", t)))
        assert admitted == [] and "out of range" in dead.reason


def test_an_event_that_makes_the_state_unstorable_is_dead_lettered_and_the_rest_of_its_object_applies(tmp_path):
    huge = run_event("r1", "Failed", "2026-01-01T00:00:05Z")
    huge["data"]["runTags"] = {"n": 123456789012345678901234567890}  # beyond 64 bits: orjson cannot store it
    # orjson refuses to write such a number, as the stores would: the standard library writes the body.
    lines = [
        body(run_event("r1", "Running", "2026-01-01T00:00:01Z")),
        json.dumps([huge]).encode(),
        body(model_event("m", 1)),
    ]
    tally, rows, letters = asyncio.run(ingest_lines(lines, tmp_path))
    assert rows["runs/r1"].state["status"] == "Running" and "models/m" in rows
    [letter] = letters
    assert "unstorable" in letter["reason"] and letter["event_id"] == huge["id"]
    assert tally.count("dead_lettered") == 1 and tally.count("applied") == 2


def test_base64_data_is_held_to_the_same_depth_limit():
    deep = b'{"runTags": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}"
    event = ce(f"{ML}.RunCompleted", "experiments/e/runs/r", None, data_base64=base64.b64encode(deep).decode())
    admitted, [dead], _ = admit(body(event))
    assert admitted == [] and "too deep" in dead.reason


def test_a_body_of_many_bad_elements_is_one_dead_letter_naming_the_first_few():
    admitted, dead, tally = admit(orjson.dumps([0] * 10_000))
    assert admitted == [] and len(dead) == 1
    assert dead[0].reason.count("element") == 5 and "and 9995 more" in dead[0].reason
    assert tally.count("dead_lettered") == 10_000  # every bad event counted, one row stored


def test_good_and_bad_events_of_one_message_give_the_good_ones_and_one_dead_letter():
    admitted, dead, _ = admit(
        body(model_event("m", 1), eg(f"{ML}.RunCompleted", None, {}), eg(f"{ML}.RunCompleted", None, {}))
    )
    assert len(admitted) == 1 and len(dead) == 1 and dead[0].reason.count("has no subject") == 2


def test_overlong_identity_fields_are_dead_lettered_before_any_pattern_sees_them():
    subject = "models/" + ":" * 50_000 + "/"  # used to take the lazy subject pattern seconds to refuse
    admitted, [dead], _ = admit(body(eg(f"{ML}.ModelRegistered", subject, {"ModelVersion": 1})))
    assert admitted == [] and str(MAX_FIELD) in dead.reason
    admitted, [dead], _ = admit(body(eg(f"{ML}.ModelRegistered", "models/m:1", {"ModelVersion": 1}, topic="/s" * 5000)))
    assert str(MAX_FIELD) in dead.reason


def test_subject_patterns_cannot_backtrack():
    # Each capture is a greedy class that excludes what follows it, so no two can compete for a character.
    entry = Catalog.default().entry(f"{ML}.ModelRegistered")
    [pattern] = entry.patterns
    assert "?" not in pattern.pattern.replace("(?P<", "")
    assert entry.object_for("models/m:7") == "models/m"
    assert entry.object_for("models/" + ":" * 2000 + "/") is None


def test_hostile_versions_take_the_text_order_not_a_regex():
    from processor.events.sequencer import version_key

    assert version_key("0" * 100_000 + "x").startswith("2")
    assert version_key("²") == "2²"  # a digit to str.isdigit, not to int(): text
    assert version_key("1" * 150).startswith("2")  # more than 99 digits: text


def test_types_outside_the_catalog_share_one_label_whatever_their_names():
    tally = Tally()
    intake = Intake(Catalog.default(), allowed_sources=["/subscriptions/trusted"])
    for i in range(500):
        intake.admit(body(eg(f"Evil.Type{i}", "s", {})), tally)
    intake.admit(body(eg(f"{ML}.RunCompleted", "experiments/e/runs/r", {})), tally)
    assert {t for (_, t) in tally.by_outcome_type} == {OTHER_TYPE, f"{ML}.RunCompleted"}
    assert tally.count("rejected") == 501


def test_a_nul_in_an_identity_field_is_dead_lettered_so_every_store_keeps_the_same_keys():
    admitted, [dead], _ = admit(body(model_event("m\x00x", 1)))
    assert admitted == [] and "NUL" in dead.reason
    tagged = model_event("m", 1)
    tagged["data"]["ModelTags"] = {"t": "a\x00b"}
    admitted, dead, _ = admit(body(tagged))
    assert len(admitted) == 1 and dead == []  # in data it is only data


def test_invalid_utf8_inside_a_string_field_is_dead_lettered_with_its_byte_and_no_traceback(caplog):
    raw = body(run_event("r", "Running", "2026-01-01T00:00:01Z")).replace(b'"Running"', b'"\x8d"')
    admitted, [dead], tally = admit(raw)
    where = raw.index(b"\x8d")
    assert admitted == [] and dead.reason == f"not UTF-8: invalid start byte at byte {where}"
    assert "internal error" not in dead.reason and not [r for r in caplog.records if r.levelname == "ERROR"]
    assert tally.count("dead_lettered") == 1


def test_a_time_written_in_foreign_digits_is_dead_lettered_and_cannot_win_its_object(tmp_path):
    ascii_time = "2026-01-01T00:00:05.0000000Z"
    foreign = "2026-01-01T00:00:0" + "٩" + ".0000000Z"  # Arabic-Indic nine: would sort after every ASCII time
    lines = [
        body(run_event("r", "Running", ascii_time)),
        body(run_event("r", "Failed", foreign)),
        body(run_event("r", "Completed", "2026-01-01T00:00:06.0000000Z")),
    ]
    tally, rows, letters = asyncio.run(ingest_lines(lines, tmp_path))
    assert rows["runs/r"].state["status"] == "Completed" and rows["runs/r"].sequencer.startswith("2026-01-01T00:00:06")
    assert len(letters) == 1 and "date-time" in letters[0]["reason"]


HUGE = 123456789012345678901234567890


def test_a_huge_integer_means_the_same_on_the_fast_and_the_careful_path():
    event = model_event("m", HUGE)
    plain = json.dumps([event]).encode()  # the standard library: orjson cannot write the huge integer
    # The same event behind many brackets of padding takes the careful path (the depth walk).
    event["data"]["padding"] = [[] for _ in range(40)]
    padded = json.dumps([event]).encode()
    assert padded.count(b"[") > Settings().max_depth  # the careful path indeed
    results = [admit(raw) for raw in (plain, padded)]
    (fast, _, _), (careful, _, _) = results
    assert fast[0].sequencer == careful[0].sequencer == f"130{HUGE}."
    assert fast[0].event.data["ModelVersion"] == careful[0].event.data["ModelVersion"] == HUGE
