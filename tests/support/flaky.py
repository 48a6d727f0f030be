"""`./dev flaky [N] [pytest args]`: run the same tests N times and count failures per test.

A test that fails once in twenty runs is a defect; this is how to see it. Each run writes a JUnit XML report
(pytest's own), so the counts come from pytest's verdicts, not from parsing its console output.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def failures(report: Path) -> list[str]:
    """The node ids of the tests that failed or errored in one JUnit report."""
    if not report.exists():
        return ["<pytest wrote no report: it crashed or was killed>"]
    failed = []
    for case in ET.parse(report).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").replace(".", "/")
            failed.append(f"{module}.py::{case.get('name')}")
    return failed


def main(argv: list[str]) -> int:
    runs = 10
    if argv and argv[0].isascii() and argv[0].isdigit():
        runs, argv = int(argv[0]), argv[1:]
    if runs < 1:
        print("flaky: N must be at least 1", file=sys.stderr)
        return 2
    counts: Counter[str] = Counter()
    failed_runs = 0
    with tempfile.TemporaryDirectory(prefix="flaky-") as folder:
        for run in range(1, runs + 1):
            report = Path(folder) / f"run-{run}.xml"
            started = time.monotonic()
            code = subprocess.call(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *argv],
                stdout=subprocess.DEVNULL,
            )
            failed = failures(report) if code not in (0, 5) else []
            if code == 5:
                print("flaky: pytest collected no test from those arguments", file=sys.stderr)
                return 2
            failed_runs += bool(failed) or code != 0
            counts.update(failed)
            print(
                f"run {run}/{runs}: {'ok' if code == 0 else f'{len(failed)} failed'} "
                f"({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    print(f"\n{runs - failed_runs} of {runs} runs passed")
    for test, n in counts.most_common():
        print(f"  {n}/{runs}  {test}")
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
