"""Sequencers as strings whose plain text order is the order of the events.

One representation for every kind lets the stores compare-and-set with a plain `>` on a text column,
the same in SQLite and PostgreSQL (with C collation). Within one object the kind never changes, so keys of
different kinds are never compared in practice.
"""

from __future__ import annotations

from processor.events.timefmt import normalize_time


class InvalidSequencer(ValueError):
    pass


def time_key(text: str) -> str:
    return normalize_time(text)


def string_key(value: object) -> str:
    if isinstance(value, str) and value:
        return value
    raise InvalidSequencer(f"sequencer must be a non-empty string, got {_short(value)}")


def version_key(value: object) -> str:
    """Model versions: numbers compare as numbers (10 > 9, 2.5 > 2.25 as decimals), and sort before text.

    A number becomes "1" + two digits giving the length of its integer part + the integer part + "." + the
    fraction, so that text order is numeric order for any non-negative decimal up to 99 digits.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidSequencer(f"version must be a number or a string, got {_short(value)}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and value:
        text = value.strip()
    else:
        raise InvalidSequencer(f"version must be a number or a non-empty string, got {_short(value)}")
    # Plain string methods, not a regex: a backtracking pattern was quadratic on hostile input ("000...0x").
    whole, dot, frac = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not frac or (frac.isascii() and frac.isdigit())):
        integer, fraction = whole.lstrip("0") or "0", frac.rstrip("0")
        if len(integer) < 100:
            return f"1{len(integer):02d}{integer}.{fraction}"
    return "2" + text


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
