"""What a user of any command-line tool expects of `processor`: --version, help for every option, global options
on either side of the command, JSON Lines or a table, shell completion. Real processes, real files."""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
from pathlib import Path

import orjson
import pytest

from processor.cli import build_parser
from tests.test_cli import DEVHUB, POISON, PROCESSOR, run


def walk(parser: argparse.ArgumentParser, path: str = ""):
    """(command path, action) for every action of the parser and of every subcommand under it."""
    for action in parser._actions:
        yield path or parser.prog, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path or parser.prog} {name}")


@pytest.mark.parametrize("program", ["processor", "devhub"])
def test_every_option_argument_and_command_has_help(program):
    if program == "processor":
        parser = build_parser()
    else:
        from devhub.command import build_parser as devhub_parser

        parser = devhub_parser()
    missing = []
    for where, action in walk(parser):
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            missing += [f"{where} {name}" for name in action.choices if not listed.get(name)]
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"without help: {missing}"


def test_the_walk_sees_an_option_without_help():
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers().add_parser("cmd", help="a command")
    sub.add_argument("--bare")
    assert [a.option_strings for w, a in walk(parser) if w == "x cmd" and not a.help] == [["--bare"]]


def test_version_prints_the_installed_version(tmp_path):
    done = run("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.decode().strip() == "processor 0.1.0", done


def ingested(workdir: Path) -> str:
    store = f"sqlite:///{workdir}/elsewhere.sqlite"
    assert run("ingest", str(POISON), "--store", store, cwd=workdir).returncode == 0
    return store


@pytest.mark.parametrize("before", [True, False])
def test_global_options_work_before_or_after_the_command(tmp_path, before):
    store = ingested(tmp_path)
    config = tmp_path / "quiet.toml"
    config.write_text('[log]\nlevel = "ERROR"\n')

    def args(command: list[str], *options: str) -> list[str]:
        return [*options, *command] if before else [*command, *options]

    letters = run(*args(["deadletters", "--json"], "--store", store), cwd=tmp_path)
    assert letters.returncode == 0 and len(letters.stdout.splitlines()) == len(POISON.read_bytes().splitlines())
    # Without it, the default store (another file) is empty.
    assert run("deadletters", "--json", cwd=tmp_path).stdout == b""
    noisy = run("ingest", str(POISON), "--store", store, cwd=tmp_path)
    assert b"no allowed sources" in noisy.stderr
    for options in (["--config", str(config)], ["--log-level", "error"]):
        quiet = run(*args(["ingest", str(POISON), "--store", store], *options), cwd=tmp_path)
        assert quiet.returncode == 0 and b"no allowed sources" not in quiet.stderr, (options, quiet.stderr)
    bad = run(*args(["export"], "--log-level", "chatty"), cwd=tmp_path)
    assert bad.returncode == 2 and b"--log-level" in bad.stderr, bad.stderr


def test_records_print_as_json_lines_or_as_a_table_with_control_characters_escaped(tmp_path):
    lines = tmp_path / "odd.jsonl"
    lines.write_bytes(b"not json \x1b[2J\r\x07 end\n")
    assert run("ingest", str(lines), cwd=tmp_path).returncode == 0
    as_json = run("deadletters", "--json", cwd=tmp_path).stdout.splitlines()
    assert [orjson.loads(line)["body"] for line in as_json] == ["not json \x1b[2J\r\x07 end"]
    piped = run("deadletters", cwd=tmp_path).stdout.splitlines()
    assert piped == as_json  # into a pipe, JSON Lines unless --table
    table = run("deadletters", "--table", cwd=tmp_path).stdout.decode()
    header, row = table.splitlines()
    assert header.split() == ["id", "received", "origin", "reason", "body"]
    assert "\x1b" not in table and "\r" not in table and "\x07" not in table
    assert "not json \\x1b[2J\\r\\x07 end" in row


def test_a_terminal_gets_a_table_by_default(tmp_path):
    assert run("ingest", str(POISON), cwd=tmp_path).returncode == 0
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
    with subprocess.Popen([str(PROCESSOR), "export"], cwd=tmp_path, env=env, stdout=follower) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(60) == 0
    os.close(leader)
    text = b"".join(chunks).decode()
    assert text.split()[:6] == ["object", "source", "type", "sequencer", "updated", "state"], text


def complete(line: str) -> list[str]:
    """What bash offers for `line` (the cursor at its end) with the script `processor completion bash` prints."""
    script = run("completion", "bash", cwd=Path.cwd()).stdout.decode()
    words = line.split(" ")
    probe = (
        f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        '_processor; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().split()


def test_bash_completion_offers_commands_and_each_commands_options():
    assert complete("processor de") == ["deadletters"]
    assert complete("processor --") == ["--config", "--help", "--log-level", "--store", "--version"]
    assert set(complete("processor run --")) >= {"--consumer-group", "--from", "--no-http", "--store", "--config"}
    assert complete("processor --store x deadletters --l") == ["--limit", "--log-level"]
    assert complete("processor completion ") == ["--config", "--help", "--log-level", "--store", "-h", "bash", "zsh"]
    zsh = run("completion", "zsh", cwd=Path.cwd()).stdout.decode()
    assert zsh.startswith("#compdef processor\n") and "bashcompinit" in zsh and "complete -o default" in zsh


def test_devhub_still_parses_its_own_config_option(tmp_path):
    done = run("--config", str(tmp_path / "missing.toml"), "demo", "--duration", "-5", cwd=tmp_path, program=DEVHUB)
    assert done.returncode == 2
