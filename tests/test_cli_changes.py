"""`processor changes` as users run it: real processes over a real SQLite store filled by `processor ingest`."""

from __future__ import annotations

import asyncio
import os
import signal

import orjson

from tests.test_cli import PROCESSOR, run


def fill(workdir, events: int = 300, env: dict | None = None) -> None:
    """Simulated traffic ingested in two halves: objects of both change twice."""
    assert run("simulate", "--events", str(events), "--out", "s.jsonl", "--seed", "7", cwd=workdir).returncode == 0
    traffic = (workdir / "s.jsonl").read_bytes().splitlines(keepends=True)
    (workdir / "a.jsonl").write_bytes(b"".join(traffic[: len(traffic) // 2]))
    (workdir / "b.jsonl").write_bytes(b"".join(traffic[len(traffic) // 2 :]))
    for half in ("a.jsonl", "b.jsonl"):
        done = run("ingest", half, "--log-level", "error", cwd=workdir, env=env)
        assert done.returncode == 0, done.stderr


def lines(out: bytes) -> list[dict]:
    return [orjson.loads(line) for line in out.splitlines()]


def test_changes_replay_to_the_export_and_resume_after_a_position(tmp_path):
    fill(tmp_path)
    changes = lines(run("changes", "--json", cwd=tmp_path).stdout)
    assert [c["position"] for c in changes] == list(range(1, len(changes) + 1))
    view = {(c["source"], c["object"]): c for c in changes}
    exported = lines(run("export", "--json", cwd=tmp_path).stdout)
    assert len(exported) == len(view) < len(changes)  # objects changed more than once
    for row in exported:
        change = view[(row["source"], row["object"])]
        assert {k: change[k] for k in row} == row
    rest = run("changes", "--json", "--after", str(len(changes) - 3), cwd=tmp_path)
    assert lines(rest.stdout) == changes[-3:] and rest.stderr == b""
    # Filters, and where to go on from when they hid the last changes.
    runs = run("changes", "--json", "--prefix", "runs/", "--type", "nothing", cwd=tmp_path)
    assert runs.stdout == b"" and f"--after {len(changes)}".encode() in runs.stderr
    table = run("changes", "--table", "--after", str(len(changes) - 1), cwd=tmp_path).stdout.decode()
    assert table.splitlines()[0].split()[:3] == ["position", "object", "source"] and len(table.splitlines()) == 2


def test_a_pruned_or_unknown_position_fails_with_one_line_naming_it(tmp_path):
    fill(tmp_path, env={"PROCESSOR_FEED_RETENTION_CHANGES": "5"})
    pruned = run("changes", "--json", cwd=tmp_path)
    assert pruned.returncode == 1 and pruned.stdout == b""
    assert b"no longer kept" in pruned.stderr and len(pruned.stderr.splitlines()) == 1, pruned.stderr
    ahead = run("changes", "--after", "999999", cwd=tmp_path)
    assert ahead.returncode == 2 and b"beyond the newest" in ahead.stderr
    assert run("changes", "--after", "-1", cwd=tmp_path).returncode == 2
    assert run("changes", "--state", "no-equals-sign", cwd=tmp_path).returncode == 2


async def test_follow_prints_new_commits_as_they_come_and_stops_on_sigterm(tmp_path):
    fill(tmp_path, events=100)
    head = len(lines(run("changes", "--json", cwd=tmp_path).stdout))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
    follower = await asyncio.create_subprocess_exec(
        str(PROCESSOR),
        "changes",
        "--follow",
        "--json",
        "--after",
        str(head),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert run("simulate", "--events", "50", "--out", "more.jsonl", "--seed", "8", cwd=tmp_path).returncode == 0
        done = await asyncio.to_thread(run, "ingest", "more.jsonl", "--log-level", "error", cwd=tmp_path)
        assert done.returncode == 0
        total = len(lines(run("changes", "--json", cwd=tmp_path).stdout))
        assert total > head
        followed = []
        while len(followed) < total - head:
            line = await asyncio.wait_for(follower.stdout.readline(), 60)
            assert line, "the follower ended early"
            followed.append(orjson.loads(line)["position"])
        assert followed == list(range(head + 1, total + 1))
        follower.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(follower.wait(), 30) == 0
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()
