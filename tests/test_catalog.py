"""The default catalog: each type and subject form names its object and sequencer; users add their own."""

import orjson
import pytest

from processor.core.intake import Intake
from processor.core.model import Tally
from processor.events.catalog import Catalog, CatalogError
from processor.events.sequencer import version_key
from tests.builders import ML, STORAGE, WS, blob_event, body, ce, eg, model_event, run_event

T0 = "2026-01-01T00:00:00.0000000Z"


def admit(*events, allowed=(), catalog=None):
    tally = Tally()
    admitted, dead = Intake(catalog or Catalog.default(), allowed).admit(body(*events), tally)
    return admitted, dead, tally


@pytest.mark.parametrize(
    "event, obj, sequencer",
    [
        (run_event("r1", "Running", T0), "runs/r1", "2026-01-01T00:00:00.000000000Z"),
        (run_event("r1", None, T0), "runs/r1", "2026-01-01T00:00:00.000000000Z"),
        (model_event("m1", 10), "models/m1", version_key(10)),
        (model_event("m1", "3"), "models/m1", version_key(3)),
        (
            eg(f"{ML}.ModelDeployed", "endpoints/svc1", {"ServiceName": "svc1", "ModelIds": "a:1,b:2"}, T0),
            "endpoints/svc1",
            "2026-01-01T00:00:00.000000000Z",
        ),
        (
            eg(f"{ML}.DatasetDriftDetected", "datadrift/d1/run/r9", {"DataDriftId": "d1", "DriftCoefficient": 0.8}, T0),
            "datadrifts/d1",
            "2026-01-01T00:00:00.000000000Z",
        ),
        (
            eg(
                f"{ML}.DatasetDriftDetected",
                "datadrifts/d1/runs/r9",
                {"DataDriftId": "d1", "DriftCoefficient": 0.8},
                T0,
            ),
            "datadrifts/d1",
            "2026-01-01T00:00:00.000000000Z",
        ),
        (
            blob_event("a/b.txt", "00000000000000000000000000000A2F"),
            "/blobServices/default/containers/c/blobs/a/b.txt",
            "00000000000000000000000000000A2F",
        ),
        (
            blob_event("a/b.txt", "0" * 47 + "1", created=False, etag=None),
            "/blobServices/default/containers/c/blobs/a/b.txt",
            "0" * 47 + "1",
        ),
    ],
)
def test_each_default_type_names_its_object_and_sequencer(event, obj, sequencer):
    [ev], dead, _ = admit(event)
    assert dead == []
    assert ev.key[1] == obj
    assert ev.sequencer == sequencer


def test_both_schemas_identify_the_same_object():
    [a], _, _ = admit(run_event("r1", "Running", T0, id="x"))
    [b], _, _ = admit(ce(f"{ML}.RunStatusChanged", "experiments/exp1/runs/r1", {"runStatus": "Running"}, T0, id="x"))
    assert (a.key, a.order) == (b.key, b.order)


def test_model_versions_order_as_numbers_where_they_are_numbers():
    keys = [version_key(v) for v in [1, "2", 9, "10", 10.5, "11", 100, "v2-beta", "zeta"]]
    assert keys == sorted(keys)
    assert version_key(10) > version_key(9) and version_key("10") > version_key("9")
    assert version_key("007") == version_key(7)
    assert version_key(2.5) > version_key("2.25")


def test_any_event_with_data_sequencer_uses_it_and_etag_is_read_from_either_spelling():
    ev = eg(
        "Microsoft.Storage.BlobCreated",
        "/blobServices/default/containers/c/blobs/x",
        {"sequencer": "0A", "etag": "lower"},
        topic=STORAGE,
    )
    [a], _, _ = admit(ev)
    assert (a.sequencer, a.etag) == ("0A", "lower")
    [b], _, _ = admit(blob_event("x", "0B", etag="0xUPPER"))
    assert b.etag == "0xUPPER"


def test_sources_compare_case_insensitively_and_others_are_rejected_and_counted():
    allowed = [WS.upper() + "/"]
    admitted, _, tally = admit(run_event("r1", "Running", T0), blob_event("x", "01"), allowed=allowed)
    assert [a.key[1] for a in admitted] == ["runs/r1"]
    assert admitted[0].key[0] == WS.lower()
    assert tally.count("rejected") == 1


def test_unknown_types_are_ignored_and_counted_not_dead_lettered():
    admitted, dead, tally = admit(eg("Microsoft.Storage.SomethingNew", "s", {}), eg("Some.Other", None, None))
    assert admitted == [] and dead == []
    assert tally.count("ignored") == 2


def test_subscription_validation_messages_are_ignored():
    tally = Tally()
    admitted, dead = Intake(Catalog.default()).admit(b"[]", tally, delivery_kind="SubscriptionValidation")
    assert (admitted, dead, tally.count("ignored")) == ([], [], 1)


@pytest.mark.parametrize(
    "event, reason",
    [
        (eg(f"{ML}.RunCompleted", None, {"runId": "r"}), "has no subject"),
        (eg(f"{ML}.RunCompleted", "experiments/e/runs/r", None), "has no data"),
        (eg(f"{ML}.RunCompleted", "experiments/e/runs/r", ["not", "an", "object"]), "has no data"),
        (eg(f"{ML}.RunCompleted", "experiments/e/runs/r", {}, time=None), "has no time"),
        (eg(f"{ML}.RunCompleted", "experiments/e/runs/r", {}, time="last tuesday"), "not an ISO-8601"),
        (eg(f"{ML}.RunCompleted", "runs/r", {}), "matches none of"),
        (eg(f"{ML}.ModelRegistered", "models/m:1", {"ModelName": "m"}), "no data.ModelVersion"),
        (eg(f"{ML}.ModelRegistered", "models/m:1", {"ModelVersion": True}), "version must be"),
        (
            eg(
                "Microsoft.Storage.BlobCreated",
                "/blobServices/default/containers/c/blobs/x",
                {"api": "PutBlob"},
                topic=STORAGE,
            ),
            "no data.sequencer",
        ),
        (
            eg(
                "Microsoft.Storage.BlobCreated",
                "/blobServices/default/containers/c/blobs/x",
                {"sequencer": 12},
                topic=STORAGE,
            ),
            "non-empty string",
        ),
    ],
)
def test_a_known_type_missing_what_it_needs_is_dead_lettered(event, reason):
    admitted, [dead], tally = admit(event)
    assert admitted == []
    assert reason in dead.reason
    assert dead.event_id == event["id"]
    assert tally.count("dead_lettered") == 1


def test_users_add_types_through_catalog_entries():
    catalog = Catalog.from_specs(
        [
            {
                "types": ["Contoso.Orders.OrderShipped"],
                "subjects": ["orders/{OrderId}/shipments/{ShipmentId}"],
                "object": "orders/{OrderId}",
                "sequencer": "data.revision",
                "order": "version",
                "etag": ["data.hash"],
                "reducer": "merge",
            }
        ],
        "test",
        base=Catalog.default(),
    )
    [ev], _, _ = admit(
        eg("Contoso.Orders.OrderShipped", "orders/o1/shipments/s1", {"revision": 12, "hash": "h"}), catalog=catalog
    )
    assert (ev.key[1], ev.sequencer, ev.etag, ev.reducer.name) == ("orders/o1", version_key(12), "h", "merge")
    assert catalog.entry(f"{ML}.RunCompleted") is not None  # the defaults stay


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"subjects": ["a"], "object": "a", "sequencer": "time", "reducer": "merge"}, "'types'"),
        ({"types": ["T"], "subjects": ["a/{X}"], "object": "o/{Y}", "sequencer": "time", "reducer": "merge"}, "{Y}"),
        ({"types": ["T"], "subjects": ["a"], "object": "a", "sequencer": "clock", "reducer": "merge"}, "'sequencer'"),
        (
            {
                "types": ["T"],
                "subjects": ["a"],
                "object": "a",
                "sequencer": "data.x",
                "order": "alpha",
                "reducer": "merge",
            },
            "'order'",
        ),
        ({"types": ["T"], "subjects": ["a"], "object": "a", "sequencer": "time", "reducer": "sum"}, "'reducer'"),
        (
            {"types": ["T"], "subjects": ["a"], "object": "a", "sequencer": "time", "reducer": "merge", "etag": "x"},
            "'etag'",
        ),
    ],
)
def test_bad_catalog_entries_are_refused_with_the_field_named(spec, message):
    with pytest.raises(CatalogError, match=message.replace("{", r"\{").replace("}", r"\}")):
        Catalog.from_specs([spec], "cfg")


JOB_TYPE = {
    "types": ["Contoso.Job.Changed"],
    "subjects": ["jobs/{Job}"],
    "object": "jobs/{Job}",
    "sequencer": "data.rev",
    "order": "version",
    "reducer": "job",
}
JOB_REDUCER = {
    "name": "job",
    "latest": {"status": "data.status", "owner": "data.owner.name", "at": "time"},
    "latest_per_key": {"labels": "data.labels"},
    "earliest": {"reached": "data.status"},
    "union": {"revisions": "data.rev"},
}


def job(rev, status=None, **data):
    return eg(
        "Contoso.Job.Changed",
        "jobs/j1",
        {"rev": rev, **({"status": status} if status else {}), **data},
        time=f"2026-01-01T00:00:0{rev}Z",
        id=f"j{rev}",
    )


def test_a_users_reducer_is_a_merge_of_the_declared_fields_whatever_the_order():
    from itertools import permutations

    from processor.core.fold import fold_object

    catalog = Catalog.from_specs([JOB_TYPE], "test", base=Catalog.default(), reducers=[JOB_REDUCER])
    events = [
        job(1, "Queued", owner={"name": "ann"}, labels={"a": "1"}),
        job(2, "Running", labels={"b": "2"}),
        job(3, labels={"a": "3"}),
    ]
    states = set()
    for order in permutations(events):
        row = None
        for event in order:  # one fold per arrival, each from the row the last one wrote
            fold = fold_object(admit(event, catalog=catalog)[0], row, "now")
            row = fold.write.row if fold.write is not None else row
        states.add(orjson.dumps(row.state, option=orjson.OPT_SORT_KEYS))
    [state] = [orjson.loads(s) for s in states]
    assert state == {
        "status": "Running",
        "owner": "ann",
        "at": "2026-01-01T00:00:03.000000000Z",
        "labels": {"a": "3", "b": "2"},
        "revisions": [1, 2, 3],
        "reached": {"Queued": "2026-01-01T00:00:01.000000000Z", "Running": "2026-01-01T00:00:02.000000000Z"},
    }


@pytest.mark.parametrize(
    "reducer, message",
    [
        ({**JOB_REDUCER, "python": "mod:func"}, "reducer 'job'.*unknown key 'python'"),
        ({**JOB_REDUCER, "latest": {"status": "body.status"}}, "reducer 'job'.*latest.status"),
        ({**JOB_REDUCER, "union": {"status": "data.other"}}, "reducer 'job'.*'status' is declared twice"),
        ({"name": "job"}, "reducer 'job'.*declares no field"),
        ({**JOB_REDUCER, "name": "merge"}, "reducer 'merge'.*built-in"),
        ({**JOB_REDUCER, "name": "jo b"}, "'name' must be a plain name"),
    ],
)
def test_a_users_reducer_that_is_not_built_from_merges_is_refused_naming_it(reducer, message):
    with pytest.raises(CatalogError, match=message):
        Catalog.from_specs([JOB_TYPE], "cfg", base=Catalog.default(), reducers=[reducer])


def test_a_type_naming_an_undeclared_reducer_is_refused():
    with pytest.raises(CatalogError, match="'reducer' must be one of .*got 'job'"):
        Catalog.from_specs([JOB_TYPE], "cfg", base=Catalog.default())


def test_the_catalogs_reducer_names_are_the_built_in_reducers():
    from processor.core.reducers import REDUCERS
    from processor.events.catalog import REDUCER_NAMES

    assert REDUCER_NAMES == frozenset(REDUCERS)


def test_reducers_come_from_the_config_file(tmp_path):
    from processor.config import ConfigError, load_settings

    cfg = tmp_path / "p.toml"
    cfg.write_text(
        '[[catalog.types]]\ntypes = ["Contoso.Job.Changed"]\nsubjects = ["jobs/{Job}"]\n'
        'object = "jobs/{Job}"\nsequencer = "data.rev"\nreducer = "job"\n\n'
        '[[catalog.reducers]]\nname = "job"\nlatest = { status = "data.status" }\n'
    )
    assert "job" in load_settings(env={}, path=cfg).catalog().reducers
    cfg.write_text(cfg.read_text().replace("latest =", "sum ="))
    with pytest.raises(ConfigError, match="reducer 'job'.*unknown key 'sum'"):
        load_settings(env={}, path=cfg)
