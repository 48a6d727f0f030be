"""The catalog of event types: which object an event updates, its sequencer, its etag and its reducer.

Entries come from the packaged default catalog (processor/defaults/catalog.toml) plus the user's own, in
the same shape. Identification is pure: `Catalog.identify(event)` returns an `Identity` or a `Malformed`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, NamedTuple

from processor.events.envelope import Event, Malformed
from processor.events.sequencer import InvalidSequencer, string_key, time_key, version_key
from processor.events.timefmt import InvalidTime

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# An object template may also name fields of the event's data, tried in turn: {data.ruleName|data.policyRunId}.
_DATA_SLOT = re.compile(r"\{(data\.[A-Za-z_][A-Za-z0-9_]*(?:\|data\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_ORDERS: dict[str, Callable[[object], str]] = {"string": string_key, "version": version_key}
# The built-in reducers (processor.core.reducers defines them; a test checks the two lists agree).
REDUCER_NAMES = frozenset({"run", "model", "endpoint", "datadrift", "blob", "replace", "merge"})
# What a user's reducer is built from: each a table of state field -> where in the event its value is.
REDUCER_KINDS = ("latest", "latest_per_key", "earliest", "union")
_EVENT_PATHS = ("time", "type", "subject", "id", "data")


class CatalogError(ValueError):
    """A catalog entry is unusable; the message names the entry and the field."""


class Identity(NamedTuple):
    object: str
    sequencer: str
    etag: str | None
    time: str  # normalised event time, kept for reducers
    # The subject named another object than the data does (a `prefer` field): the data's was used.
    mismatch: bool = False


def reducer_spec(spec: Any, where: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A user's reducer, checked: (name, {kind: {field: event path}}). Every reducer must be a merge, so it can
    only be made of the merge building blocks; anything else is refused naming the reducer."""
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: a reducer must be a table")
    name = spec.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise CatalogError(f"{where}: 'name' must be a plain name, got {name!r}")
    where = f"{where} (reducer {name!r})"
    if name in REDUCER_NAMES:
        raise CatalogError(f"{where}: that is a built-in reducer's name")
    unknown = sorted(set(spec) - {"name", *REDUCER_KINDS})
    if unknown:
        raise CatalogError(
            f"{where}: unknown key {unknown[0]!r}; a reducer is a merge built from "
            f"{', '.join(REDUCER_KINDS)} (each a table of state field = event path)"
        )
    kinds: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for kind in REDUCER_KINDS:
        table = spec.get(kind, {})
        if not isinstance(table, dict):
            raise CatalogError(f"{where}: '{kind}' must be a table of state field = event path")
        for field, path in table.items():
            if not isinstance(path, str) or not (path in _EVENT_PATHS or (path.startswith("data.") and len(path) > 5)):
                raise CatalogError(
                    f"{where}: {kind}.{field} must be one of {', '.join(_EVENT_PATHS)} or "
                    f"data.<field>[.<field>...], got {path!r}"
                )
            if field in seen:
                raise CatalogError(f"{where}: state field {field!r} is declared twice")
            seen.add(field)
        kinds[kind] = dict(table)
    if not seen:
        raise CatalogError(f"{where}: declares no field")
    return name, kinds


class Entry:
    __slots__ = (
        "types",
        "patterns",
        "object",
        "data_slots",
        "prefer",
        "sequencer_field",
        "order",
        "etag_fields",
        "reducer",
        "_cache",
    )

    def __init__(self, spec: dict[str, Any], where: str, reducers: frozenset[str] = REDUCER_NAMES):
        def need(key: str, kind: type) -> Any:
            value = spec.get(key)
            if not isinstance(value, kind) or not value:
                raise CatalogError(f"{where}: '{key}' must be a non-empty {kind.__name__}")
            return value

        self.types: tuple[str, ...] = tuple(need("types", list))
        if not all(isinstance(t, str) and t for t in self.types):
            raise CatalogError(f"{where}: 'types' must list non-empty strings")
        self.patterns = tuple(_compile_subject(p, where) for p in need("subjects", list))
        self.object: str = need("object", str)
        captured = set().union(*(p.groupindex for p in self.patterns)) | {"subject"}
        for name in _PLACEHOLDER.findall(self.object):
            if name not in captured:
                raise CatalogError(f"{where}: object template uses {{{name}}}, which no subject pattern captures")
        self.data_slots = bool(_DATA_SLOT.search(self.object))
        # Captures that the event's data names better than its subject (a sample subject with a placeholder).
        prefer = spec.get("prefer", [])
        if not isinstance(prefer, list) or not all(isinstance(p, str) and p in captured for p in prefer):
            raise CatalogError(f"{where}: 'prefer' must list names the subject patterns capture")
        self.prefer: tuple[str, ...] = tuple(prefer)
        sequencer = need("sequencer", str)
        if sequencer == "time":
            self.sequencer_field: str | None = None
            self.order: Callable[[object], str] = time_key  # type: ignore[assignment]
        elif sequencer.startswith("data.") and len(sequencer) > 5:
            self.sequencer_field = sequencer[5:]
            order = spec.get("order", "string")
            if order not in _ORDERS:
                raise CatalogError(f"{where}: 'order' must be one of {sorted(_ORDERS)}, got {order!r}")
            self.order = _ORDERS[order]
        else:
            raise CatalogError(f'{where}: \'sequencer\' must be "time" or "data.<field>", got {sequencer!r}')
        etag = spec.get("etag", ["data.eTag", "data.etag"])
        if not isinstance(etag, list) or not all(isinstance(e, str) and e.startswith("data.") for e in etag):
            raise CatalogError(f"{where}: 'etag' must be a list of \"data.<field>\" names")
        self.etag_fields = tuple(e[5:] for e in etag)
        self.reducer: str = need("reducer", str)
        if self.reducer not in reducers:
            raise CatalogError(
                f"{where}: 'reducer' must be one of {sorted(reducers)} (or a [[catalog.reducers]] "
                f"name), got {self.reducer!r}"
            )
        # Subjects repeat (every event of a run has its run's subject): remember what each one resolved to.
        self._cache: dict[str, str | None] = {}

    def object_for(self, subject: str) -> str | None:
        cached = self._cache.get(subject, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        found = None
        for pattern in self.patterns:
            m = pattern.fullmatch(subject)
            if m:
                groups = m.groupdict()
                groups["subject"] = subject
                found = _PLACEHOLDER.sub(_filler(groups), self.object)
                break
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[subject] = found
        return found


_MISSING = object()


def _filler(groups: dict[str, str]) -> Callable[[re.Match[str]], str]:
    """The replacement of each {Name} of an object template by what the subject pattern captured."""
    return lambda placeholder: groups[placeholder.group(1)]


def _compile_subject(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise CatalogError(f"{where}: subject patterns must be non-empty strings")
    if pattern == "{subject}":
        return re.compile(r"(?P<subject_all>.+)", re.S)
    parts, last = [], 0
    for m in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[last : m.start()]))
        # A capture stops at '/' and at the character that follows it in the pattern (the ':' of
        # `models/{ModelName}:{ModelVersion}`): greedy classes that cannot overlap, so matching is linear in
        # the subject. Lazy or overlapping groups backtrack quadratically on hostile subjects.
        follow = pattern[m.end() : m.end() + 1]
        stop = "/" if follow in ("", "/", "{") else "/" + follow
        parts.append(f"(?P<{m.group(1)}>[^{re.escape(stop)}]+)")
        last = m.end()
    parts.append(re.escape(pattern[last:]))
    try:
        return re.compile("".join(parts))
    except re.error as exc:
        raise CatalogError(f"{where}: bad subject pattern {pattern!r}: {exc}") from None


class Catalog:
    def __init__(self, entries: list[Entry], reducers: dict[str, dict[str, dict[str, str]]] | None = None):
        self.reducers = reducers or {}  # the user's reducers: name -> {kind: {field: event path}}
        self.by_type: dict[str, Entry] = {}
        for entry in entries:
            for etype in entry.types:
                # A later entry (the user's) overrides an earlier one (the default) for the same type.
                self.by_type[etype] = entry

    @classmethod
    def from_specs(
        cls,
        specs: list[dict[str, Any]],
        origin: str,
        base: Catalog | None = None,
        reducers: Sequence[dict[str, Any]] = (),
    ) -> Catalog:
        declared: dict[str, dict[str, dict[str, str]]] = dict(base.reducers) if base else {}
        for index, spec in enumerate(reducers):
            name, kinds = reducer_spec(spec, f"{origin}: reducer {index}")
            declared[name] = kinds
        names = REDUCER_NAMES | frozenset(declared)
        entries = list(dict.fromkeys(base.by_type.values())) if base else []
        for index, spec in enumerate(specs):
            if not isinstance(spec, dict):
                raise CatalogError(f"{origin}: catalog entry {index} must be a table")
            entries.append(Entry(spec, f"{origin}: catalog entry {index} ({spec.get('types')})", names))
        return cls(entries, declared)

    @classmethod
    def default(cls) -> Catalog:
        text = resources.files("processor.defaults").joinpath("catalog.toml").read_text("utf-8")
        return cls.from_specs(tomllib.loads(text)["types"], "default catalog")

    def entry(self, event_type: str) -> Entry | None:
        return self.by_type.get(event_type)

    def identify(self, event: Event, entry: Entry) -> Identity | Malformed:
        """What the event updates and where it stands in that object's order, or why it can't say."""
        etype = event.type
        if event.subject is None:
            return Malformed(f"{etype} event has no subject", event.id)
        data = event.data
        if type(data) is not dict:
            return Malformed(f"{etype} event has no data object", event.id)
        if event.time is None:
            return Malformed(f"{etype} event has no time", event.id)
        try:
            time = time_key(event.time)
        except InvalidTime as exc:
            return Malformed(f"{etype} event: {exc}", event.id)
        obj = entry.object_for(event.subject)
        if obj is None:
            return Malformed(
                f"{etype} subject {event.subject[:200]!r} matches none of {list(entry_patterns(entry))}", event.id
            )
        mismatch = False
        if entry.prefer:
            obj, mismatch = _preferred(entry, event.subject, data, obj)
        if entry.data_slots:
            filled = _fill_data(obj, data)
            if filled is None:
                return Malformed(
                    f"{etype} event has none of the data fields its object {entry.object!r} names", event.id
                )
            obj = filled
        try:
            explicit = data.get("sequencer")
            if explicit is not None:
                sequencer = string_key(explicit)
            elif entry.sequencer_field is None:
                sequencer = time
            else:
                value = data.get(entry.sequencer_field)
                if value is None:
                    return Malformed(f"{etype} event has no data.{entry.sequencer_field}", event.id)
                sequencer = entry.order(value)
        except InvalidSequencer as exc:
            return Malformed(f"{etype} event: {exc}", event.id)
        etag = None
        for field in entry.etag_fields:
            value = data.get(field)
            if value and type(value) is str:
                etag = value
                break
        return Identity(obj, sequencer, etag, time, mismatch)


def _preferred(entry: Entry, subject: str, data: dict[str, Any], obj: str) -> tuple[str, bool]:
    """The object with each `prefer` capture taken from the data where the data names another value."""
    for pattern in entry.patterns:
        m = pattern.fullmatch(subject)
        if m is None:
            continue
        groups = m.groupdict()
        groups["subject"] = subject
        mismatch = False
        for name in entry.prefer:
            value = data.get(name)
            if isinstance(value, str) and value and "/" not in value and value != groups.get(name):
                groups[name] = value
                mismatch = True
        if mismatch:
            return _PLACEHOLDER.sub(_filler(groups), entry.object), True
        break
    return obj, False


def _fill_data(template: str, data: dict[str, Any]) -> str | None:
    """The template with each {data.a|data.b} slot filled from the first data field present, or None."""
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        for path in m.group(1).split("|"):
            value = data.get(path[5:])
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return str(value).replace("/", "%2F")
        missing = True
        return ""

    out = _DATA_SLOT.sub(fill, template)
    return None if missing else out


def entry_patterns(entry: Entry) -> list[str]:
    return [p.pattern for p in entry.patterns]
