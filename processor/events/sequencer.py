"""Sequencers as strings whose plain text order is the order of the events.

One representation for every kind lets the stores compare-and-set with a plain `>` on a text column,
the same in SQLite and PostgreSQL (with C collation). Within one object the kind never changes, so keys of
different kinds are never compared in practice.
"""

from __future__ import annotations

import re

from processor.events.timefmt import normalize_time

_DECIMAL = re.compile(r"0*(\d+?)(?:\.(\d*?)0*)?")


class InvalidSequencer(ValueError):
    pass


def time_key(text: str) -> str:
    return normalize_time(text)


def string_key(value: object) -> str:
    if isinstance(value, str) and value:
        return value
    raise InvalidSequencer(f"sequencer must be a non-empty string, got {value!r}")


def version_key(value: object) -> str:
    """Model versions: numbers compare as numbers (10 > 9, 2.5 > 2.25 as decimals), and sort before text.

    A number becomes "1" + two digits giving the length of its integer part + the integer part + "." + the
    fraction, so that text order is numeric order for any non-negative decimal up to 99 digits.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidSequencer(f"version must be a number or a string, got {value!r}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and value:
        text = value.strip()
    else:
        raise InvalidSequencer(f"version must be a number or a non-empty string, got {value!r}")
    m = _DECIMAL.fullmatch(text)
    if m and len(m.group(1)) < 100:
        integer, fraction = m.group(1), m.group(2) or ""
        return f"1{len(integer):02d}{integer}.{fraction}"
    return "2" + text
