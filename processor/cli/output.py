"""How commands print records: JSON Lines for programs (`--json`), an aligned table for people (`--table`); with
neither, a table on a terminal and JSON Lines into a pipe or a file, so `processor export | jq` keeps working and
a person typing `processor deadletters` gets columns.

Table cells come from untrusted input (object names, dead-letter bodies): characters a terminal would act on
(escape sequences, carriage returns) are shown escaped, never written raw. Imports orjson only.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import orjson

SIZING_ROWS = 200  # a table's column widths come from its first rows; later, longer cells are cut


class Column(NamedTuple):
    title: str
    value: Callable[[dict[str, Any]], Any]
    max_width: int = 40


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json", action="store_true", help="JSON Lines, one object per record (the default into a pipe or file)"
    )
    group.add_argument("--table", action="store_true", help="a table for people (the default on a terminal)")


def wants_json(args: argparse.Namespace) -> bool:
    if getattr(args, "json", False):
        return True
    if getattr(args, "table", False):
        return False
    return not sys.stdout.isatty()


def printable(value: Any) -> str:
    """The value as one line of text a terminal shows as is: control characters escaped."""
    if value is None:
        return "-"
    if not isinstance(value, str):
        value = orjson.dumps(value).decode() if isinstance(value, (dict, list)) else str(value)
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Table:
    """Aligned columns, their widths set by the first rows (up to the column's max width), so that a long
    listing can be written as it comes."""

    def __init__(self, columns: list[Column], first: list[dict[str, Any]]):
        self.columns = columns
        cells = [[printable(c.value(r)) for c in columns] for r in first]
        self.widths = [
            min(c.max_width, max([len(c.title)] + [len(row[i]) for row in cells])) for i, c in enumerate(columns)
        ]
        self.lines = [self._line([c.title for c in columns])] + [self._line(row) for row in cells]

    def _line(self, values: list[str]) -> str:
        return "  ".join(_cut(v, w).ljust(w) for v, w in zip(values, self.widths)).rstrip() + "\n"

    def row(self, record: dict[str, Any]) -> str:
        return self._line([printable(c.value(record)) for c in self.columns])


def write_records(records: Iterable[dict[str, Any]], args: argparse.Namespace, columns: list[Column]) -> None:
    """Print the records as the options ask."""
    out = sys.stdout
    if wants_json(args):
        write = out.buffer.write
        for record in records:
            write(orjson.dumps(record) + b"\n")
        out.flush()
        return
    rows: Iterator[dict[str, Any]] = iter(records)
    table = Table(columns, list(itertools.islice(rows, SIZING_ROWS)))
    out.writelines(table.lines)
    for record in rows:
        out.write(table.row(record))
    out.flush()


def tail(text: Any, parts: int = 1, sep: str = "/") -> Any:
    """The last `parts` segments of a path-like name (a resource id's workspace, an event type's last word)."""
    if not isinstance(text, str):
        return text
    return sep.join(text.rstrip(sep).split(sep)[-parts:])


def write_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    """A command's closing counts: one JSON object with --json, else `key value  key value ...`."""
    if getattr(args, "json", False):
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        sys.stdout.write("  ".join(f"{k.replace('_', '-')} {v}" for k, v in summary.items()) + "\n")
    sys.stdout.flush()
