r"""Event time -> a canonical UTC string that sorts like the instant it names.

Event Grid writes 7 fractional digits; other producers write 3, 6, 9 or none, `Z` or an offset.
`datetime.fromisoformat` truncates to microseconds, which would make two distinct events tie, so the
normalisation is done on the text: the canonical form is `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (nanoseconds,
always 9 digits), whose plain string order is the order of the instants.

Digits are ASCII only, as RFC 3339 says: `\d` would also take Arabic-Indic digits, which `int()` reads but
whose text sorts after every ASCII time. A leap second (`23:59:60`, valid RFC 3339) keeps its `:60`, which
sorts after `:59.999999999` and before the next minute, as the instant does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?"
)


class InvalidTime(ValueError):
    """The text is not an ISO-8601 date-time we can place on the timeline."""


_EVENT_GRID_FORM = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{7}Z")
# Dates already checked (a stream spans few days); bounded so hostile input cannot grow it without end.
_valid_dates: set[str] = set()


def normalize_time(text: str) -> str:
    # Fast path: Event Grid's own `YYYY-MM-DDTHH:MM:SS.fffffffZ`, whose canonical form is a suffix away.
    m = _EVENT_GRID_FORM.fullmatch(text) if type(text) is str else None
    if m is not None and m.group(1) in _valid_dates:
        return text[:27] + "00Z"
    return _normalize(text)


def _normalize(text: str) -> str:
    m = _ISO.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidTime(f"not an ISO-8601 date-time: {str(text)[:64]!r}")
    year, month, day, hour, minute, second, frac, _z, sign, off_h, off_m = m.groups()
    # Digits past nanoseconds are below any producer's clock resolution; they are dropped, not rounded,
    # so that normalisation never carries into the next second.
    nanos = (frac or "")[:9].ljust(9, "0")
    leap = second == "60"
    try:
        # Validates the calendar (Feb 30, hour 24, ...) even on the fast path. A leap second is placed as
        # :59 for the calendar and the offset, and written back as :60.
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), 59 if leap else int(second))
    except ValueError as exc:
        raise InvalidTime(f"not a valid date-time: {text[:64]!r} ({exc})") from None
    if len(_valid_dates) > 10_000:
        _valid_dates.clear()
    _valid_dates.add(f"{year}-{month}-{day}")
    if sign is not None:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise InvalidTime(f"offset out of range: {text[:64]!r}")
        try:
            moment = moment - offset if sign == "+" else moment + offset
        except OverflowError:
            raise InvalidTime(f"out of range once moved to UTC: {text[:64]!r}") from None
    # A time without an offset is taken as UTC: Event Grid only ever writes UTC.
    seconds = 60 if leap else moment.second
    date = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return f"{date}T{moment.hour:02d}:{moment.minute:02d}:{seconds:02d}.{nanos}Z"
