"""The fold's staleness rules and the reducers' states."""

from processor.core.fold import fold_object
from processor.core.intake import Intake
from processor.core.model import Row, Tally
from processor.events.catalog import Catalog
from tests.builders import ML, blob_event, body, eg, model_event, run_event

NOW = "2026-06-01T00:00:00Z"


def admitted(*events):
    out, dead = Intake(Catalog.default()).admit(body(*events), Tally())
    assert dead == []
    return sorted(out, key=lambda a: a.order)


def outcomes(fold):
    return [o for o, _ in fold.outcomes]


def test_run_state_collects_status_and_transition_times():
    evs = admitted(
        run_event("r", "Queued", "2026-01-01T00:00:01Z"),
        run_event("r", "Running", "2026-01-01T00:00:02Z"),
        run_event("r", "Completed", "2026-01-01T00:00:09Z"),
    )
    fold = fold_object(evs, None, NOW)
    state = fold.write.row.state
    assert state["status"] == "Completed"
    assert list(state["transitions"]) == ["Queued", "Running", "Completed"]
    assert state["transitions"]["Running"] == "2026-01-01T00:00:02.000000000Z"
    assert (state["experiment_id"], state["run_id"], state["tags"]) == ("exp1", "r", {"k": "v"})
    assert fold.write.expected is None


def test_run_completed_without_status_sets_completed():
    [ev] = admitted(run_event("r", None, "2026-01-01T00:00:01Z"))
    assert fold_object([ev], None, NOW).write.row.state["status"] == "Completed"


def stored(fold):
    w = fold.write.row
    return Row(
        w.source,
        w.object,
        w.event_type,
        w.event_id,
        w.sequencer,
        w.etag,
        w.state,
        w.updated_at,
        w.provenance,
        w.revision,
    )


def test_older_events_are_stale_and_only_add_history_equal_ones_are_duplicates():
    first = fold_object(admitted(model_event("m", 5, id="e5")), None, NOW)
    current = stored(first)
    again = admitted(model_event("m", 3, id="e3"), model_event("m", 5, id="e5"))
    fold = fold_object(again, current, NOW)
    assert outcomes(fold) == ["stale", "duplicate"]
    row = fold.write.row
    assert (row.event_id, row.state["version"], row.state["versions"]) == ("e5", 5, [3, 5])
    assert row.state["tags"] == {"t": "5"}  # the late version overwrites nothing
    # Folding the same events again from there changes nothing, so nothing is written.
    assert fold_object(again, stored(fold), NOW).write is None


def test_newer_event_is_applied_on_top_of_the_stored_state_with_a_compare_and_set():
    current = stored(fold_object(admitted(model_event("m", 9, id="e9")), None, NOW))
    fold = fold_object(admitted(model_event("m", 10, id="e10")), current, NOW)
    assert outcomes(fold) == ["applied"]
    assert fold.write.expected == current.revision
    assert fold.write.row.state["version"] == 10


def test_same_etag_for_the_same_type_is_a_duplicate_but_a_delete_with_that_etag_is_not():
    created = stored(fold_object(admitted(blob_event("x", "01", etag="E1")), None, NOW))
    again = fold_object(admitted(blob_event("x", "02", etag="E1")), created, NOW)
    assert outcomes(again) == ["duplicate"]
    deleted = fold_object(admitted(blob_event("x", "03", created=False, etag="E1")), created, NOW)
    assert outcomes(deleted) == ["applied"]
    assert deleted.write.row.state["deleted"] is True
    assert deleted.write.row.state["content_length"] == 10  # what the blob was, kept


def test_ties_on_the_sequencer_go_to_the_larger_event_id():
    t = "2026-01-01T00:00:05Z"
    evs = admitted(run_event("r", "Failed", t, id="b"), run_event("r", "Completed", t, id="a"))
    fold = fold_object(evs, None, NOW)
    assert fold.write.row.event_id == "b"
    assert fold.write.row.state["status"] == "Failed"


def test_endpoint_and_drift_states():
    [dep] = admitted(
        eg(
            f"{ML}.ModelDeployed",
            "endpoints/s",
            {"ServiceName": "s", "ServiceComputeType": "AKS", "ModelIds": "m1:1, m2:3", "ServiceTags": {"a": "b"}},
        )
    )
    assert fold_object([dep], None, NOW).write.row.state["model_ids"] == ["m1:1", "m2:3"]
    [drift] = admitted(
        eg(
            f"{ML}.DatasetDriftDetected",
            "datadrifts/d/runs/r",
            {"DataDriftId": "d", "DriftCoefficient": 0.7, "StartTime": "s", "EndTime": "e"},
        )
    )
    state = fold_object([drift], None, NOW).write.row.state
    assert (state["drift_coefficient"], state["window"]) == (0.7, {"start": "s", "end": "e"})
