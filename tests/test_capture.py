"""`processor ingest --capture`: Event Hubs Capture files (written here with fastavro in the service's schema and
layout) project exactly as file ingest of the same bodies, from a local folder and from a blob container
(Azurite); empty files are fine, corrupt ones are named and stop the run or are skipped, per the setting."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from processor.capture import open_capture
from processor.config import Settings
from processor.sim.traffic import deliver, lifecycle
from tests.support.capture import avro_file, capture_files, records_of, write_folder
from tests.test_cli import POISON, run


def sample_bodies(events: int = 600, poison: int = 3) -> list[bytes]:
    bodies = [m.body for m in deliver(lifecycle(events, seed=5), seed=6)]
    bad = POISON.read_bytes().splitlines()[:poison]
    # Spread the poison over the partitions and files.
    for i, b in enumerate(bad):
        bodies.insert(37 * (i + 1), b)
    return bodies


def exported(workdir: Path, store: str) -> list[dict]:
    done = run("export", "--store", store, cwd=workdir)
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    for row in rows:
        del row["updated_at"]  # the wall-clock time of the write
    return rows


def file_ingest_export(workdir: Path, bodies: list[bytes]) -> list[dict]:
    (workdir / "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
    done = run("ingest", "bodies.jsonl", "--store", "sqlite:///oracle.sqlite", cwd=workdir)
    assert done.returncode == 0, done.stderr
    return exported(workdir, "sqlite:///oracle.sqlite")


def ingest_capture(workdir: Path, path: str, env: dict | None = None, *more: str) -> subprocess.CompletedProcess:
    """`processor ingest --capture PATH --json` into capture.sqlite; stderr as text."""
    done = run(
        "ingest", "--capture", path, "--json", "--store", "sqlite:///capture.sqlite", *more, env=env, cwd=workdir
    )
    done.stderr = done.stderr.decode()
    return done


def test_a_capture_folder_projects_as_file_ingest_of_the_same_bodies(tmp_path):
    bodies = sample_bodies()
    files = capture_files(records_of(bodies, partitions=4), per_file=40)
    write_folder(tmp_path / "capture", files)
    (tmp_path / "capture" / "ns" / "events" / "0" / "2026" / "03" / "01" / "10" / "00").mkdir(parents=True)
    (tmp_path / "capture" / "ns" / "events" / "0" / "2026" / "03" / "01" / "10" / "00" / "00.avro").write_bytes(b"")

    done = ingest_capture(tmp_path, "capture")
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert summary["capture_files"] == len(files) + 1
    assert summary["empty_files"] == 4 + 1  # an idle window per partition, and a 0-byte file
    assert summary["corrupt_files"] == summary["sequence_gaps"] == summary["unmatched_files"] == 0
    assert summary["dead_lettered"] == 3
    assert exported(tmp_path, "sqlite:///capture.sqlite") == file_ingest_export(tmp_path, bodies)

    # A dead letter names the file and the message as the hub would: hub/partition@sequence number.
    letters = [
        orjson.loads(x)
        for x in run("deadletters", "--store", "sqlite:///capture.sqlite", cwd=tmp_path).stdout.splitlines()
    ]
    assert len(letters) == 3
    for letter in letters:
        assert re.fullmatch(r"capture/ns/events/(\d)/2026/03/01/09/\d\d/00\.avro:events/\1@\d+", letter["origin"])


def test_files_are_read_in_partition_then_sequence_order_whatever_the_format_puts_first(tmp_path):
    fmt = "{Namespace}/{EventHub}/{Year}-{Month}-{Day}/{Hour}{Minute}{Second}/p{PartitionId}"
    bodies = [b'{"n": %d}' % i for i in range(240)]
    write_folder(tmp_path, capture_files(records_of(bodies, partitions=12), per_file=7, fmt=fmt))
    settings = Settings(capture_format=fmt)
    # Any folder at or under the root: the tokens come from the whole path.
    reader = open_capture(str(tmp_path / "ns" / "events"), settings)
    labels = [label for label, _body, _kind in reader.messages()]
    order = [(int(m[1]), int(m[2])) for m in (re.search(r"events/(\d+)@(\d+)$", x) for x in labels)]
    assert order == sorted(order)  # partitions 0, 1, 2, ..., 10, 11 (not 0, 1, 10, 11, 2), each in sequence
    assert len(order) == 240 and order[0] == (0, 0) and order[-1] == (11, 19)
    assert reader.report.ends[("ns", "events", "10")].sequence_number == 19


def test_records_without_a_body_or_of_a_validation_handshake_are_counted_not_lost(tmp_path):
    from tests.support.capture import Record

    records = [
        Record(0, "0", None),
        Record(1, "10", b'[{"id":"v"}]', properties={"aeg-event-type": b"SubscriptionValidation"}),
    ]
    write_folder(tmp_path / "c", capture_files({"0": records}, idle_window_after=None))
    summary = orjson.loads(ingest_capture(tmp_path, "c").stdout)
    assert summary["read"] == 2 and summary["dead_lettered"] == 1 and summary["ignored"] == 1


def bodies_of(avro: bytes) -> list[bytes]:
    """The bodies fastavro reads out of a file, up to where it breaks."""
    import io

    import fastavro

    bodies: list[bytes] = []
    try:
        bodies.extend(r["Body"] for r in fastavro.reader(io.BytesIO(avro)))
    except Exception:  # a corrupt file: what came before the break
        pass
    return bodies


def corrupt_folder(tmp_path: Path, bodies: list[bytes]) -> tuple[dict[str, bytes], str, str]:
    files = capture_files(records_of(bodies, partitions=2), per_file=60, idle_window_after=None)
    names = sorted(files)
    garbage, cut = names[1], names[-2]
    files[garbage] = b"this is no Avro file" * 20
    files[cut] = files[cut][: len(files[cut]) * 2 // 3]  # cut inside a block, as an interrupted copy is
    write_folder(tmp_path / "capture", files)
    return files, garbage, cut


def test_a_corrupt_file_stops_the_run_naming_it_with_what_was_read_before_it_written(tmp_path):
    files, garbage, _cut = corrupt_folder(tmp_path, sample_bodies(300, poison=0))
    done = ingest_capture(tmp_path, "capture")
    assert done.returncode == 1
    assert f"capture/{garbage}: corrupt Capture file" in done.stderr
    assert "PROCESSOR_CAPTURE_ON_CORRUPT" in done.stderr
    first = sorted(files)[0]  # read before it: partition 0's first window
    assert garbage == sorted(files)[1]
    assert exported(tmp_path, "sqlite:///capture.sqlite") == file_ingest_export(tmp_path, bodies_of(files[first]))


def test_with_skip_a_corrupt_file_is_named_and_the_rest_of_the_files_still_read(tmp_path):
    bodies = sample_bodies(300, poison=0)
    files, garbage, cut = corrupt_folder(tmp_path, bodies)
    done = ingest_capture(tmp_path, "capture", {"PROCESSOR_CAPTURE_ON_CORRUPT": "skip"})
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["corrupt_files"] == 2
    assert f"capture/{garbage}: corrupt Capture file" in done.stderr
    read_of_cut = int(re.search(rf"capture/{re.escape(cut)}: corrupt .* after (\d+) records", done.stderr)[1])
    assert 0 < read_of_cut < 60

    # What was read is exactly the intact files and the cut file's first records.
    kept: list[bytes] = []
    for name in sorted(files):
        if name != garbage:
            kept += bodies_of(files[name])[:read_of_cut] if name == cut else bodies_of(files[name])
    assert exported(tmp_path, "sqlite:///capture.sqlite") == file_ingest_export(tmp_path, kept)


def test_a_missing_file_is_reported_as_a_gap_in_its_partitions_sequence(tmp_path):
    files = capture_files(records_of([b'{"n": %d}' % i for i in range(100)], partitions=1), per_file=20)
    del files[sorted(files)[2]]
    write_folder(tmp_path / "c", files)
    done = ingest_capture(tmp_path, "c")
    assert done.returncode == 0
    assert orjson.loads(done.stdout)["sequence_gaps"] == 1
    assert "sequence numbers 20..39 are in no Capture file" in done.stderr


def test_a_folder_of_empty_files_only_is_fine_and_one_without_capture_files_is_an_error(tmp_path):
    write_folder(tmp_path / "idle", {"ns/events/0/2026/03/01/09/00/00.avro": avro_file([])})
    done = ingest_capture(tmp_path, "idle")
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert summary["read"] == 0 and summary["empty_files"] == 1

    write_folder(tmp_path / "other", {"somewhere/else.avro": avro_file([])})
    done = ingest_capture(tmp_path, "other")
    assert done.returncode == 1
    assert "no Capture files under other" in done.stderr and "somewhere/else.avro" in done.stderr
    assert ingest_capture(tmp_path, "nowhere").returncode == 1


@pytest.mark.parametrize(
    "env, named",
    [
        ({"PROCESSOR_CAPTURE_FORMAT": "{Namespace}/{EventHub}/{Year}/{Month}/{Day}"}, "PROCESSOR_CAPTURE_FORMAT"),
        ({"PROCESSOR_CAPTURE_ON_CORRUPT": "ignore"}, "PROCESSOR_CAPTURE_ON_CORRUPT"),
    ],
)
def test_a_bad_capture_setting_exits_2_naming_it(tmp_path, env, named):
    done = ingest_capture(tmp_path, "c", env)
    assert done.returncode == 2 and named in done.stderr


def test_files_and_capture_together_or_neither_exit_2(tmp_path):
    assert run("ingest", cwd=tmp_path).returncode == 2
    assert run("ingest", "x.jsonl", "--capture", "c", cwd=tmp_path).returncode == 2


def test_neither_file_nor_local_capture_ingest_imports_the_azure_sdk_or_aiohttp(tmp_path):
    write_folder(tmp_path / "c", capture_files(records_of(sample_bodies(50, 0), 2)))
    (tmp_path / "b.jsonl").write_bytes(b"\n".join(sample_bodies(50, 0)) + b"\n")
    probe = (
        "import sys\nfrom processor.cli import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('azure', 'aiohttp')}))\n"
    )
    for args in (["ingest", "b.jsonl"], ["ingest", "--capture", "c"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == b"[]", args


# --- a blob container (Azurite) -----------------------------------------------------------------------------


def upload(connection_string: str, container: str, files: dict[str, bytes], prefix: str) -> None:
    from azure.storage.blob import ContainerClient

    with ContainerClient.from_connection_string(connection_string, container) as client:
        client.create_container()
        for name, data in files.items():
            client.upload_blob(prefix + name, data)


async def test_a_capture_container_on_azurite_projects_as_file_ingest_of_the_same_bodies(tmp_path, azurite):
    bodies = sample_bodies()
    files = capture_files(records_of(bodies, partitions=4), per_file=40)
    # Another hub's files beside, outside the folder named: not read.
    other = capture_files(records_of(sample_bodies(30, 0), 1), hub="other")
    await asyncio.to_thread(upload, azurite.connection_string, "capture", {**files, **other}, "")
    await asyncio.to_thread(upload, azurite.connection_string, "archive", files, "eh/")

    url = f"{azurite.blob_endpoint}/archive/eh"
    env = {"PROCESSOR_CAPTURE_CONNECTION_STRING": azurite.connection_string}
    done = await asyncio.to_thread(ingest_capture, tmp_path, url, env)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["capture_files"] == len(files)
    expected = await asyncio.to_thread(file_ingest_export, tmp_path, bodies)
    assert exported(tmp_path, "sqlite:///capture.sqlite") == expected

    # The folder of one hub in a container of several, with a SAS in the URL instead of a connection string.
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from tests.support.azurite import ACCOUNT, ACCOUNT_KEY

    sas = generate_container_sas(
        ACCOUNT,
        "capture",
        ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    (tmp_path / "capture.sqlite").unlink()
    done = await asyncio.to_thread(ingest_capture, tmp_path, f"{azurite.blob_endpoint}/capture/ns/events?{sas}")
    assert done.returncode == 0, done.stderr
    assert exported(tmp_path, "sqlite:///capture.sqlite") == expected
    assert sas not in done.stderr

    done = await asyncio.to_thread(ingest_capture, tmp_path, f"{azurite.blob_endpoint}/missing", env)
    assert done.returncode == 1
    assert "container 'missing'" in done.stderr and "does not exist" in done.stderr
