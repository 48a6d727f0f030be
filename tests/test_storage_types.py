"""Each Storage event type, in both schemas, from payloads shaped as Azure sends them: what it does to the
projection. (Sequences of them, in every order, are in test_storage_namespace.py.)"""

from __future__ import annotations

import asyncio

import pytest

from processor.config import Settings
from processor.core.model import Tally
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.builders import (
    ML,
    STORAGE,
    WS,
    body,
    ce,
    eg,
    hns_created,
    hns_deleted,
    hns_dir_created,
    hns_dir_deleted,
    hns_renamed,
    storage_event,
    storage_subject,
)

T1, T2, T3 = (f"2026-04-01T08:00:0{n}.1234567Z" for n in (1, 2, 3))


def project(*events: dict) -> tuple[dict[str, dict], Tally]:
    async def run():
        store = SqliteStore("sqlite:///:memory:")
        await store.open()
        try:
            tally = await ingest([(f"l{i}", body(e)) for i, e in enumerate(events)], Settings(), store)
            return {r.object: r.to_json() async for r in store.export()}, tally
        finally:
            await store.close()

    return asyncio.run(run())


both_schemas = pytest.mark.parametrize("cloud", [False, True], ids=["eventgrid", "cloudevents"])


@both_schemas
def test_blob_created_is_live_with_its_content(cloud):
    rows, tally = project(hns_created("a/x.csv", T1, "0A", length=42, etag="0x8DC1", cloud=cloud))
    state = rows[storage_subject("a/x.csv")]["state"]
    assert state["deleted"] is False and state["kind"] == "blob"
    assert (state["content_length"], state["etag"], state["blob_type"], state["content_type"]) == (
        42,
        "0x8DC1",
        "BlockBlob",
        "text/plain",
    )
    assert state["content_offset"] == 0 and state["api"] == "CreateFile"
    assert tally.count("applied") == 1


def test_the_export_shows_the_derived_fields_and_not_the_bookkeeping_they_come_from():
    rows, _ = project(hns_created("x", T1, "01"))
    state = rows[storage_subject("x")]["state"]
    assert not [k for k in state if k.startswith("_")]
    assert set(state) >= {"deleted", "content_length", "etag", "url", "created_at"}


@both_schemas
def test_blob_deleted_after_its_creation_is_deleted_and_keeps_what_it_was(cloud):
    rows, _ = project(hns_deleted("x", T2, "02", cloud=cloud), hns_created("x", T1, "01", length=7, cloud=cloud))
    state = rows[storage_subject("x")]["state"]
    assert state["deleted"] is True and state["content_length"] == 7
    assert state["deleted_at"] == "2026-04-01T08:00:02.123456700Z"


@both_schemas
def test_blob_renamed_moves_the_source_to_the_destination(cloud):
    rows, _ = project(
        hns_renamed("in/x", "out/x", T2, "02", cloud=cloud), hns_created("in/x", T1, "01", length=9, cloud=cloud)
    )
    src, dst = rows[storage_subject("in/x")]["state"], rows[storage_subject("out/x")]["state"]
    assert src["deleted"] is True and src["renamed_to"] == storage_subject("out/x")
    assert dst["deleted"] is False and dst["renamed_from"] == storage_subject("in/x")
    assert dst["content_length"] == 9 and dst["url"].endswith("/c/out/x")
    assert rows[storage_subject("out/x")]["event_type"] == "Microsoft.Storage.BlobRenamed"


@both_schemas
def test_a_rename_whose_source_is_unknown_still_makes_the_destination_live(cloud):
    rows, _ = project(hns_renamed("in/x", "out/x", T2, "02", cloud=cloud))
    dst = rows[storage_subject("out/x")]["state"]
    assert dst["deleted"] is False and dst["kind"] == "blob" and "content_length" not in dst


@both_schemas
def test_directory_created_and_deleted_without_recursion(cloud):
    rows, _ = project(
        hns_dir_created("d", T1, "01", cloud=cloud),
        hns_created("d/keep", T2, "02", cloud=cloud),
        hns_dir_deleted("d", T3, "03", recursive=False, cloud=cloud),
    )
    assert rows[storage_subject("d")]["state"]["kind"] == "directory"
    assert rows[storage_subject("d")]["state"]["deleted"] is True
    assert rows[storage_subject("d/keep")]["state"]["deleted"] is False  # "recursive": "false" reaches nothing


@both_schemas
def test_directory_deleted_recursively_deletes_what_is_beneath_it_and_not_what_comes_after(cloud):
    later = "2026-04-01T08:00:09Z"
    rows, _ = project(
        hns_created("d/a", T1, "01", cloud=cloud),
        hns_created("d/sub/b", T1, "01", cloud=cloud),
        hns_dir_deleted("d", T2, "02", cloud=cloud),
        hns_created("d/c", later, "03", cloud=cloud),
        hns_created("dd/x", T1, "01", cloud=cloud),  # shares the prefix "d", not the directory
    )
    for name in ("d/a", "d/sub/b"):
        state = rows[storage_subject(name)]["state"]
        assert state["deleted"] is True and state["deleted_by"] == storage_subject("d")
    assert rows[storage_subject("d/c")]["state"]["deleted"] is False
    assert rows[storage_subject("dd/x")]["state"]["deleted"] is False


@both_schemas
def test_directory_renamed_moves_the_directory_and_everything_beneath_it(cloud):
    rows, _ = project(
        hns_renamed("tmp", "final", T2, "02", directory=True, cloud=cloud),
        hns_created("tmp/part-0", T1, "01", length=3, cloud=cloud),
        hns_dir_created("tmp/sub", T1, "01", cloud=cloud),
    )
    live = {k for k, r in rows.items() if not r["state"]["deleted"]}
    assert live == {storage_subject(p) for p in ("final", "final/part-0", "final/sub")} | {
        "/blobServices/default/containers/c"
    }
    moved = rows[storage_subject("final/part-0")]["state"]
    assert moved["content_length"] == 3 and moved["renamed_from"] == storage_subject("tmp/part-0")
    assert rows[storage_subject("final/sub")]["state"]["kind"] == "directory"
    assert rows[storage_subject("tmp/part-0")]["state"]["renamed_to"] == storage_subject("final/part-0")


def test_the_container_row_says_the_namespace_is_hierarchical_once_a_directory_event_names_it():
    flat, _ = project(hns_created("x", T1, "01"))
    assert flat["/blobServices/default/containers/c"]["state"] == {"kind": "container", "deleted": False}
    rows, _ = project(hns_created("x", T1, "01"), hns_dir_created("d", T2, "02"))
    assert rows["/blobServices/default/containers/c"]["state"]["hierarchical"] is True


@both_schemas
def test_blob_tier_changed_sets_the_tier_and_keeps_the_blob_live(cloud):
    data = {
        "api": "SetBlobTier",
        "contentType": "image/jpeg",
        "contentLength": 105891,
        "blobType": "BlockBlob",
        "url": "https://acct1.blob.core.windows.net/c/x",
        "accessTier": "Archive",
        "previousTier": "Cool",
    }
    rows, _ = project(
        storage_event("BlobTierChanged", "x", data, T2, "02", cloud=cloud), hns_created("x", T1, "01", cloud=cloud)
    )
    state = rows[storage_subject("x")]["state"]
    assert (state["access_tier"], state["previous_tier"], state["deleted"]) == ("Archive", "Cool", False)
    assert state["content_type"] == "image/jpeg" and state["content_length"] == 105891
    assert state["tier_changed_at"] == "2026-04-01T08:00:02.123456700Z"


@both_schemas
def test_async_operation_initiated_records_a_rehydration(cloud):
    data = {
        "api": "SetBlobTier",
        "contentType": "image/jpeg",
        "contentLength": 105891,
        "blobType": "BlockBlob",
        "url": "https://acct1.blob.core.windows.net/c/x",
    }
    rows, _ = project(storage_event("AsyncOperationInitiated", "x", data, T1, "01", cloud=cloud))
    state = rows[storage_subject("x")]["state"]
    assert state["async_operation"] == {"api": "SetBlobTier", "started_at": "2026-04-01T08:00:01.123456700Z"}
    assert state["deleted"] is False


@pytest.mark.parametrize("etype", ["BlobPropertiesUpdated", "BlobMetadataUpdated"])
def test_property_and_metadata_updates_change_the_fields_they_carry(etype):
    data = {"api": "SetBlobProperties", "contentType": "application/json", "metadata": {"owner": "ml"}}
    rows, _ = project(hns_created("x", T1, "01"), storage_event(etype, "x", data, T2, "02"))
    state = rows[storage_subject("x")]["state"]
    assert state["content_type"] == "application/json" and state["metadata"] == {"owner": "ml"}
    assert state["content_length"] == 10  # from the creation


@both_schemas
def test_inventory_policy_runs_are_account_objects_per_rule(cloud):
    data = {
        "scheduleDateTime": "2026-04-01T08:00:00Z",
        "accountName": "acct1",
        "ruleName": "daily-csv",
        "policyRunStatus": "Succeeded",
        "policyRunStatusMessage": "Inventory run succeeded, refer manifest file for inventory details.",
        "policyRunId": "c4f5f5c2-0000-4000-8000-000000000000",
        "manifestBlobUrl": "https://acct1.blob.core.windows.net/inv/2026/04/01/daily-csv/manifest.json",
    }
    make, key = (ce, "source") if cloud else (eg, "topic")
    event = make("Microsoft.Storage.BlobInventoryPolicyCompleted", "BlobDataManagement/BlobInventory", data, T1)
    event[key] = STORAGE
    rows, _ = project(event)
    state = rows["policies/inventory/daily-csv"]["state"]
    assert state["data"]["policyRunStatus"] == "Succeeded" and state["data"]["ruleName"] == "daily-csv"


@both_schemas
def test_lifecycle_policy_runs_are_account_objects_with_their_summary(cloud):
    summary = {"totalObjectsCount": 3, "successCount": 2, "errorList": "x"}
    data = {
        "scheduleTime": "2026/04/01 08:00:00",
        "deleteSummary": summary,
        "tierToCoolSummary": {"totalObjectsCount": 0, "successCount": 0, "errorList": ""},
        "tierToArchiveSummary": {"totalObjectsCount": 0, "successCount": 0, "errorList": ""},
    }
    make, key = (ce, "source") if cloud else (eg, "topic")
    subject = "BlobDataManagement/LifeCycleManagement/SummaryReport"
    event = make("Microsoft.Storage.LifecyclePolicyCompleted", subject, data, T1)
    event[key] = STORAGE
    rows, _ = project(event)
    assert rows["policies/lifecycle/2026%2F04%2F01 08:00:00"]["state"]["data"]["deleteSummary"] == summary


def test_a_policy_run_without_the_fields_naming_it_is_dead_lettered():
    event = eg("Microsoft.Storage.BlobInventoryPolicyCompleted", "BlobDataManagement/BlobInventory", {}, T1)
    event["topic"] = STORAGE
    rows, tally = project(event)
    assert rows == {} and tally.count("dead_lettered") == 1


@both_schemas
def test_drift_with_a_placeholder_subject_names_the_monitor_from_its_data_and_counts_it(cloud):
    data = {"DataDriftId": "01d29aa4-0000-4000-8000-000000000000", "DataDriftName": "drift1", "DriftCoefficient": 0.8}
    make = ce if cloud else eg
    rows, tally = project(make(f"{ML}.DatasetDriftDetected", "datadrifts/{}/runs/{}", data, T1, **_source(cloud)))
    assert list(rows) == ["datadrifts/01d29aa4-0000-4000-8000-000000000000"]
    assert tally.summary()["subject_mismatch"] == 1


def test_drift_whose_subject_and_data_agree_counts_no_mismatch():
    data = {"DataDriftId": "d1", "DriftCoefficient": 0.1}
    rows, tally = project(eg(f"{ML}.DatasetDriftDetected", "datadrift/d1/run/r1", data, T1))
    assert list(rows) == ["datadrifts/d1"] and "subject_mismatch" not in tally.summary()


def _source(cloud: bool) -> dict:
    return {"source": WS} if cloud else {"topic": WS}
