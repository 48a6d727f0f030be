"""The `processor` command as users run it: a real process, real files, a real SQLite store."""

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from processor.sim.traffic import deliver, lifecycle
from tests.builders import WS, blob_event, body, model_event, run_event

POISON = Path(__file__).parent / "data" / "poison.jsonl"
PROCESSOR = Path(sys.executable).with_name("processor")
DEVHUB = Path(sys.executable).with_name("devhub")  # the development tool: `devhub admin`, `devhub demo`


def run(
    *args: str, env: dict | None = None, stdin: bytes | None = None, cwd: Path, program: Path = PROCESSOR
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
    full_env.update(env or {})
    return subprocess.run([str(program), *args], cwd=cwd, env=full_env, input=stdin, capture_output=True, timeout=120)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


def test_poison_lines_are_dead_lettered_with_reasons_and_good_lines_still_land(workdir):
    good = body(run_event("r1", "Running", "2026-01-01T00:00:01Z")) + b"\n" + body(model_event("m", 3)) + b"\n"
    mixed = workdir / "mixed.jsonl"
    poison = POISON.read_bytes().splitlines()
    mixed.write_bytes(poison[0] + b"\n" + good + b"\n".join(poison[1:]) + b"\n")

    done = run("ingest", str(mixed), "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert summary["applied"] == 2
    assert summary["dead_lettered"] == len(poison) + 2  # [1, 2, 3]: each element is a bad event

    exported = [orjson.loads(line) for line in run("export", cwd=workdir).stdout.splitlines()]
    assert sorted(r["object"] for r in exported) == ["models/m", "runs/r1"]

    letters = [orjson.loads(line) for line in run("deadletters", cwd=workdir).stdout.splitlines()]
    assert len(letters) == len(poison)  # one per bad message, however many bad events it holds
    reasons = " | ".join(d["reason"] for d in letters)
    for expected in [
        "not JSON",
        "not UTF-8",
        "empty JSON array",
        "too deep",
        "no id",
        "has no subject",
        "has no data",
        "has no time",
        "not a valid date-time",
        "no data.ModelVersion",
        "matches none of",
        "base64",
        "specversion",
        "non-empty string",
        "element 2",
    ]:
        assert expected in reasons
    assert all(d["origin"].startswith(str(mixed)) for d in letters)

    # Dead letters are kept once: ingesting the same bad lines again adds none.
    assert run("ingest", str(mixed), cwd=workdir).returncode == 0
    again = run("deadletters", cwd=workdir).stdout.splitlines()
    assert len(again) == len(letters)


def test_ingest_from_stdin_export_sorted_and_show(workdir):
    lines = b"\n".join(m.body for m in deliver(lifecycle(300, seed=3), seed=4)) + b"\n"
    done = run("ingest", "-", stdin=lines, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("read ")
    rows = [orjson.loads(line) for line in run("export", cwd=workdir).stdout.splitlines()]
    assert rows and [(r["source"], r["object"]) for r in rows] == sorted((r["source"], r["object"]) for r in rows)
    assert set(rows[0]) == {"source", "object", "event_type", "event_id", "sequencer", "etag", "state", "updated_at"}
    assert all(r["source"] == r["source"].lower() for r in rows)

    shown = run("show", rows[0]["object"], "--source", rows[0]["source"].upper(), cwd=workdir)
    assert shown.returncode == 0 and orjson.loads(shown.stdout)["event_id"] == rows[0]["event_id"]
    missing = run("show", "runs/nope", cwd=workdir)
    assert missing.returncode == 1 and b"no object" in missing.stderr


def test_allowed_sources_from_the_environment_reject_others(workdir):
    src = workdir / "in.jsonl"
    src.write_bytes(b"\n".join(m.body for m in deliver(lifecycle(200, seed=5))) + b"\n")
    allowed = (
        "/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/resourceGroups/ml-prod/providers/"
        "Microsoft.MachineLearningServices/workspaces/ws-0"
    )
    done = run("ingest", str(src), "--json", env={"PROCESSOR_ALLOWED_SOURCES": allowed}, cwd=workdir)
    summary = orjson.loads(done.stdout)
    assert summary["rejected"] > 0 and summary["applied"] > 0
    sources = {orjson.loads(line)["source"] for line in run("export", cwd=workdir).stdout.splitlines()}
    assert sources == {allowed.lower()}


@pytest.mark.parametrize(
    "env, named",
    [
        ({"PROCESSOR_STORE_URL": "mysql://x"}, "PROCESSOR_STORE_URL"),
        ({"PROCESSOR_REORDER_MAX_EVENTS": "lots"}, "PROCESSOR_REORDER_MAX_EVENTS"),
        ({"PROCESSOR_REORDER_WINDOW": "-1"}, "PROCESSOR_REORDER_WINDOW"),
        ({"PROCESSOR_STARTING_POSITION": "tomorrow"}, "PROCESSOR_STARTING_POSITION"),
        ({"PROCESSOR_CONFIG": "/no/such/file.toml"}, "PROCESSOR_CONFIG"),
    ],
)
def test_a_bad_setting_stops_with_a_message_naming_it(workdir, env, named):
    done = run("ingest", str(POISON), env=env, cwd=workdir)
    assert done.returncode == 2
    assert named in done.stderr.decode()
    assert len(done.stderr.decode().strip().splitlines()) == 1


def test_a_bad_config_file_names_the_file_and_setting(workdir):
    (workdir / "config").mkdir()
    (workdir / "config" / "processor.toml").write_text(
        '[reorder]\nmax_events = "many"\n[[catalog.types]]\ntypes = ["X"]\n'
    )
    done = run("ingest", str(POISON), cwd=workdir)
    assert done.returncode == 2 and "[reorder] max_events" in done.stderr.decode()
    (workdir / "config" / "processor.toml").write_text('[[catalog.types]]\ntypes = ["X"]\nsubjects = ["a"]\n')
    done = run("ingest", str(POISON), cwd=workdir)
    assert done.returncode == 2 and "catalog.types" in done.stderr.decode()


def test_an_unwritable_store_fails_with_one_line(workdir):
    blocker = workdir / "file"
    blocker.write_text("")
    done = run("ingest", str(POISON), env={"PROCESSOR_STORE_URL": f"sqlite:///{blocker}/sub/p.sqlite"}, cwd=workdir)
    assert done.returncode == 1
    assert "store failed" in done.stderr.decode()


def test_simulate_writes_a_sample_file_that_ingest_projects(workdir):
    done = run("simulate", "--events", "400", "--out", "sample.jsonl", cwd=workdir)
    assert done.returncode == 0, done.stderr
    lines = (workdir / "sample.jsonl").read_bytes().splitlines()
    assert len(lines) >= 400 and all(orjson.loads(line)[0]["id"] for line in lines)
    summary = orjson.loads(run("ingest", "sample.jsonl", "--json", cwd=workdir).stdout)
    assert summary["read"] == len(lines) and summary["applied"] > 0 and summary["dead_lettered"] == 0


def config_file(workdir: Path, text: str) -> None:
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "processor.toml").write_text(text)


def test_the_log_level_of_the_config_file_applies_and_the_variable_wins_over_it(workdir):
    config_file(workdir, '[log]\nlevel = "ERROR"\n')
    quiet = run("ingest", str(POISON), cwd=workdir)
    assert quiet.returncode == 0 and b"WARNING" not in quiet.stderr, quiet.stderr
    loud = run("ingest", str(POISON), env={"PROCESSOR_LOG_LEVEL": "warning"}, cwd=workdir)
    assert loud.returncode == 0 and b"no allowed sources" in loud.stderr


@pytest.mark.parametrize(
    "env, file, named",
    [
        ({"PROCESSOR_LOG_LEVEL": "chatty"}, None, "PROCESSOR_LOG_LEVEL"),
        ({}, '[log]\nlevel = "loud"\n', "[log] level"),
        ({"PROCESSOR_LOG_FORMAT": "xml"}, None, "PROCESSOR_LOG_FORMAT"),
        ({}, '[log]\nformat = "yaml"\n', "[log] format"),
    ],
)
def test_a_bad_log_level_stops_with_exit_2_and_one_line_naming_it(workdir, env, file, named):
    if file:
        config_file(workdir, file)
    for program, command in ((PROCESSOR, ["export"]), (DEVHUB, ["admin", "status"])):
        done = run(*command, env=env, cwd=workdir, program=program)
        assert done.returncode == 2, done.stderr
        assert named in done.stderr.decode() and len(done.stderr.decode().strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    "env, file, warnings",
    [
        ({}, None, 1),
        ({"PROCESSOR_ALLOWED_SOURCES": ""}, None, 0),
        ({}, "[sources]\nallowed = []\n", 0),
    ],
)
def test_the_any_source_warning_comes_once_and_only_when_no_list_was_configured(workdir, env, file, warnings):
    if file:
        config_file(workdir, file)
    done = run("ingest", str(POISON), str(POISON), env=env, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().count("no allowed sources") == warnings, done.stderr


def test_show_prints_each_match_as_a_json_line_with_the_sequencer_the_event_carried(workdir):
    other = WS.replace("WS1", "WS2")
    lines = [
        body(model_event("m", 4)),
        body(model_event("m", "2.50", topic=other)),
        body(blob_event("b.txt", "0000000000000000000000000000A1B2")),
    ]
    assert run("ingest", "-", stdin=b"\n".join(lines) + b"\n", cwd=workdir).returncode == 0
    shown = run("show", "models/m", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    rows = [orjson.loads(line) for line in shown.stdout.splitlines()]
    assert sorted(r["sequencer"] for r in rows) == ["2.5", "4"]  # not the sort keys "1014." and "1012.5"
    blob = orjson.loads(run("show", "/blobServices/default/containers/c/blobs/b.txt", cwd=workdir).stdout)
    assert blob["sequencer"] == "0000000000000000000000000000A1B2"


def test_deadletters_says_when_more_follow_and_pages_with_after(workdir):
    bad = workdir / "bad.jsonl"
    bad.write_bytes(b"".join(b"not json %d\n" % i for i in range(7)))
    assert run("ingest", str(bad), cwd=workdir).returncode == 0
    first = run("deadletters", "--limit", "3", cwd=workdir)
    assert first.returncode == 0
    page = [orjson.loads(line) for line in first.stdout.splitlines()]
    assert len(page) == 3
    assert f"--after {page[-1]['id']}" in first.stderr.decode(), first.stderr
    seen = [d["id"] for d in page]
    while True:
        nxt = run("deadletters", "--limit", "3", "--after", str(seen[-1]), cwd=workdir)
        seen += [orjson.loads(line)["id"] for line in nxt.stdout.splitlines()]
        if b"--after" not in nxt.stderr:
            break
    assert len(seen) == len(set(seen)) == 7
    assert run("deadletters", "--limit", "0", cwd=workdir).returncode == 2


def test_a_bad_store_flag_is_named_as_the_user_typed_it(workdir):
    done = run("export", "--store", "mysql://x", cwd=workdir)
    assert done.returncode == 2
    assert "--store:" in done.stderr.decode() and "--store-url" not in done.stderr.decode()


@pytest.mark.parametrize("flag, value", [("--duration", "-5"), ("--rate", "0"), ("--rate", "-1")])
def test_demo_refuses_a_negative_duration_or_rate_with_exit_2(workdir, flag, value):
    done = run("demo", flag, value, "--data-dir", str(workdir / "demo"), cwd=workdir, program=DEVHUB)
    assert done.returncode == 2, done.stderr
    assert flag in done.stderr.decode() and len(done.stderr.decode().strip().splitlines()) == 1


def test_ingest_in_fold_processes_exports_what_one_process_does(workdir):
    lines = b"\n".join(m.body for m in deliver(lifecycle(1500, seed=4), seed=5)) + b"\n"
    (workdir / "in.jsonl").write_bytes(lines)
    exports = []
    for processes in ("1", "3"):
        store = f"sqlite:///{workdir}/p{processes}.sqlite"
        done = run("ingest", "--processes", processes, "in.jsonl", "--store", store, "--json", cwd=workdir)
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["dead_lettered"] == 0
        out = run("export", "--store", store, cwd=workdir).stdout.splitlines()
        exports.append([{k: v for k, v in orjson.loads(r).items() if k != "updated_at"} for r in out])
    assert exports[0] == exports[1] and len(exports[0]) > 100


def test_ingest_with_a_bad_process_count_exits_2_naming_the_flag(workdir):
    done = run("ingest", "--processes", "two", "x.jsonl", cwd=workdir)
    assert done.returncode == 2
    assert b"--processes" in done.stderr and b"'two'" in done.stderr
