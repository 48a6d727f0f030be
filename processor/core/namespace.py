"""Storage namespaces: blobs and directories, renames and recursive deletes, as merges across objects.

A storage object's row keeps two merge fields, and everything it exports is derived from them after each fold:
- `_own`: per field, the value of the greatest (sequencer, id) event of this very name that carries it
  (content type and length, etag, tier, ...): a storage sequencer orders the events of one name only;
- `_timeline`: what made the name live or not, one entry per event: `live` (created), `dead` (deleted),
  `moved` (renamed or moved here, with the content it brought), `gone` (renamed away, or removed by a
  directory operation above it). Entries of different names meet here, so they are ordered by
  (event time, sequencer, event id): no sequencer orders two names.
The name is live when its greatest timeline entry says so; its exported content is its own, or, when the
name's last life began with a move, what the move brought.

One event updates several objects through `Effect`s, which join timeline entries into other rows without
being those rows' events: a rename marks its source `gone`; a directory's recursive delete or rename marks
every object beneath it (`push`), and an object folded later looks at the directories above it (`pull`); an
object renamed or moved away forwards its life at that instant to the destination (`forward`), with the
content of its latest entry before the move, and forwards again whenever it learns an earlier entry. Each
effect is a join, so applying them until nothing changes gives the same rows for any arrival order.

Pure: the caller loads the rows these functions read (see `processor.projector.fold_namespace`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from processor.core.merge import Contribution, MergeReducer
from processor.core.model import Admitted, ObjectKey
from processor.events.storage_paths import ancestors, subject_for_url, under

OWN, TIMELINE = "_own", "_timeline"
# Timeline entries kept per name (the latest by order): a merge still (the top of a union), and enough for
# any rename that arrives before the name has been re-created this many times since.
KEEP = 16
STORAGE = "Microsoft.Storage."
# What a name's life carries from one place to another on a rename.
CONTENT = ("kind", "content_type", "content_length", "etag", "blob_type", "access_tier")
# Timeline key suffix of what a rename's source forwarded (beside the rename's own entry on its destination).
FORWARDED = ">"

State = dict[str, Any]
EntryOrder = list[str]  # [event time, sequencer, event id]


class Effect:
    """A contribution of one event to an object the event does not name as its own (never its winner)."""

    __slots__ = ("key", "order", "contribution", "event_type", "event_id", "reducer")

    def __init__(
        self,
        key: ObjectKey,
        order: tuple[str, ...],
        contribution: Contribution,
        event_type: str,
        event_id: str,
        reducer: MergeReducer,
    ):
        self.key = key
        self.order = order
        self.contribution = contribution
        self.event_type = event_type
        self.event_id = event_id
        self.reducer = reducer

    def __repr__(self) -> str:
        return f"Effect({self.key[1]} {self.event_type} {self.contribution.latest_per_key})"


def _short(etype: str) -> str:
    return etype[len(STORAGE) :] if etype.startswith(STORAGE) else etype


def entry_order(ev: Admitted) -> EntryOrder:
    return [ev.time, ev.sequencer, ev.event.id]


def contribute(ev: Admitted) -> Contribution:
    """What a storage event brings to the object it names (its subject)."""
    data, kind = ev.event.data, _short(ev.event.type)
    own: dict[str, Any] = {"url": data.get("url"), "api": data.get("api")}
    at = entry_order(ev)
    entry: dict[str, Any]
    if kind == "BlobCreated":
        own.update(kind="blob", created_at=ev.time, content_type=data.get("contentType"))
        own["content_length"] = data.get("contentLength")
        entry = {"k": "live", "o": at}
    elif kind == "BlobDeleted":
        own["deleted_at"] = ev.time
        entry = {"k": "dead", "o": at}
    elif kind in ("BlobRenamed", "DirectoryRenamed"):
        own.update(kind="blob" if kind == "BlobRenamed" else "directory", url=data.get("destinationUrl"))
        own["renamed_at"] = ev.time
        entry = {"k": "moved", "o": at, "from": rename_source(ev), "live": True, "c": {"kind": own["kind"]}}
    elif kind == "DirectoryCreated":
        own.update(kind="directory", created_at=ev.time)
        entry = {"k": "live", "o": at}
    elif kind == "DirectoryDeleted":
        recursive = str(data.get("recursive", "")).lower() == "true"
        own.update(kind="directory", deleted_at=ev.time, recursive=recursive)
        entry = {"k": "dead", "o": at, "tree": recursive}
    else:  # tier changes, async operations, property and metadata updates: fields of a live blob
        entry = {}
        if kind == "BlobTierChanged":
            own.update(access_tier=data.get("accessTier"), previous_tier=data.get("previousTier"))
            own["tier_changed_at"] = ev.time
        elif kind == "AsyncOperationInitiated":
            own["async_operation"] = {"api": data.get("api"), "started_at": ev.time}
        if isinstance(data.get("metadata"), dict):
            own["metadata"] = data["metadata"]
        for field, name in (("content_type", "contentType"), ("content_length", "contentLength")):
            if name in data:
                own[field] = data[name]
    if ev.etag is not None:
        own["etag"] = ev.etag
    if "blobType" in data:
        own["blob_type"] = data["blobType"]
    if "contentOffset" in data:
        own["content_offset"] = data["contentOffset"]
    own = {k: v for k, v in own.items() if v is not None}
    if entry and entry["k"] == "live":
        entry["c"] = {f: own[f] for f in CONTENT if f in own}
    return Contribution(latest_per_key={OWN: own, TIMELINE: {ev.event.id: entry} if entry else {}})


def rename_source(ev: Admitted) -> str | None:
    return subject_for_url(ev.event.data.get("sourceUrl"), like=ev.event.subject)


def direct_effects(ev: Admitted) -> list[Effect]:
    """What a rename does to its source (the subject is the destination): gone, to the destination."""
    kind = _short(ev.event.type)
    if kind not in ("BlobRenamed", "DirectoryRenamed"):
        return []
    source = rename_source(ev)
    if source is None or source == ev.key[1]:
        return []
    at = entry_order(ev)
    entry = {"k": "gone", "o": at, "to": ev.key[1], "tree": kind == "DirectoryRenamed"}
    return [_effect((ev.key[0], source), at, {ev.event.id: entry}, ev)]


def _effect(key: ObjectKey, order: Iterable[str], entries: dict[str, Any], ev: Admitted) -> Effect:
    return Effect(
        key, tuple(order), Contribution(latest_per_key={TIMELINE: entries}), ev.event.type, ev.event.id, ev.reducer
    )


def timeline(state: State | None) -> dict[str, dict[str, Any]]:
    tl = state.get(TIMELINE) if state else None
    return tl if type(tl) is dict else {}


def lives(tl: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline's entries, a rename's own entry left out where its source forwarded a better one."""
    if not any(k[-1:] == FORWARDED for k in tl):
        return list(tl.values())
    return [e for k, e in tl.items() if k + FORWARDED not in tl]


def tree_entries(directory: str, state: State | None) -> list[tuple[str, dict[str, Any]]]:
    """A directory's own recursive deletes and renames: what every object beneath it must learn."""
    return [(k, e) for k, e in timeline(state).items() if e.get("tree") and e.get("by", directory) == directory]


def pushed(directory: str, key: str, entry: dict[str, Any], name: str) -> dict[str, Any]:
    """The entry an object `name` beneath `directory` gets from the directory's own entry `key`."""
    out = {"k": "gone", "o": entry["o"], "by": directory}
    if entry["k"] == "gone" and entry.get("to"):
        rel = under(name, directory)
        out["to"] = f"{entry['to']}/{rel}"
    return out


def pull(
    key: ObjectKey, entries_of: Callable[[ObjectKey], list[tuple[str, dict[str, Any]]]], reducer: MergeReducer
) -> list[Effect]:
    """The entries the directories above `key` have for it (their recursive deletes and renames);
    `entries_of(directory)` gives a directory's `tree_entries`."""
    source, name = key
    out = []
    for directory in ancestors(name):
        for k, e in entries_of((source, directory)):
            out.append(_pushed_effect((source, directory), k, e, name, reducer))
    return out


def push(directory: ObjectKey, state: State | None, names: Iterable[str], reducer: MergeReducer) -> list[Effect]:
    """A directory's recursive deletes and renames, for each known object beneath it."""
    entries = tree_entries(directory[1], state)
    return [_pushed_effect(directory, k, e, name, reducer) for name in names for k, e in entries]


def _pushed_effect(directory: ObjectKey, k: str, e: dict[str, Any], name: str, reducer: MergeReducer) -> Effect:
    entry = pushed(directory[1], k, e, name)
    etype = STORAGE + ("DirectoryRenamed" if e["k"] == "gone" else "DirectoryDeleted")
    return Effect((directory[0], name), tuple(entry["o"]), _entries({k: entry}), etype, k, reducer)


def forward(key: ObjectKey, state: State | None, reducer: MergeReducer) -> list[Effect]:
    """What an object renamed or moved away brings to each destination: its life just before the move (its
    latest timeline entry before it), marked so that a later-learned, later entry wins. A blob's own rename
    proves it was live then; a move by a directory rename carries only what the object knows."""
    tl = timeline(state)
    links = [(link, e) for link, e in tl.items() if e.get("k") == "gone" and e.get("to")]
    if not links:
        return []
    entries = sorted(lives(tl), key=_order)
    out = []
    for link, e in links:
        last = _last_before(entries, e["o"])
        if last is None or not any(x["k"] in ("live", "moved") and _order(x) < e["o"] for x in entries):
            # No life of its own before the move (only removals from above, which every new name beneath a
            # directory gets): nothing to carry; the destination's own entry says what there is. Requiring a
            # life makes each hop of a chain later than the one before, so moves across cycles end.
            continue
        # Its own rename (blob or directory) proves the object was there; a move by a directory above it
        # carries only the life the object had then.
        proven = not e.get("by")
        live = _is_live(last)
        content = last.get("c") if live and type(last.get("c")) is dict else None
        if (live or proven) and (content is None or "kind" not in content):
            # What the object is, at least: a proven rename of a name whose life we lost still moves a blob or
            # a directory. A forwarded entry's twin (the rename's own, the same instant) says which.
            twin = next((x for x in tl.values() if x is not last and x.get("o") == last["o"] and x.get("c")), None)
            if twin is not None and type(twin["c"]) is dict and twin["c"].get("kind"):
                content = {**(content or {}), "kind": twin["c"]["kind"]}
        # The mark grows with what the source knew: a forward of a forward outranks the rename's own entry.
        mark = tuple(e["o"]) + tuple(last.get("m") or last["o"])
        entry = {"k": "moved", "o": e["o"], "from": key[1], "live": live or proven, "c": content}
        entry["m"] = list(mark)
        etype = STORAGE + ("DirectoryRenamed" if e.get("by") or e.get("tree") else "BlobRenamed")
        out.append(Effect((key[0], e["to"]), mark, _entries({link + FORWARDED: entry}), etype, link, reducer))
    return out


def _last_before(entries: list[dict[str, Any]], before: EntryOrder) -> dict[str, Any] | None:
    last = None
    for x in entries:
        if _order(x) >= before:
            break
        last = x
    return last


def _entries(entries: dict[str, Any]) -> Contribution:
    return Contribution(latest_per_key={TIMELINE: entries})


def _order(entry: dict[str, Any]) -> list[str]:
    o = entry.get("o")
    return o if type(o) is list else []


def _is_live(entry: dict[str, Any]) -> bool:
    k = entry.get("k")
    return k == "live" or (k == "moved" and bool(entry.get("live", True)))


def upgrade(state: State, order: tuple[str, ...]) -> State:
    """A row written before namespaces (its fields at the top, no `_own`): one event's worth of both."""
    if OWN in state or TIMELINE in state or not state:
        return state
    own = {k: v for k, v in state.items() if not k.startswith("_") and k != "deleted"}
    deleted = bool(state.get("deleted"))
    at = (own.get("deleted_at") if deleted else own.get("created_at")) or ""
    entry: dict[str, Any] = {"k": "dead" if deleted else "live", "o": [at, *order]}
    if not deleted:
        entry["c"] = {f: own[f] for f in CONTENT if f in own}
    return {OWN: own, TIMELINE: {order[1]: entry}}


def finish(state: State) -> None:
    """The exported fields, from `_own` and `_timeline` (derived after every fold; never merged)."""
    for field in [f for f in state if not f.startswith("_")]:
        del state[field]
    own = state.get(OWN)
    own = own if type(own) is dict else {}
    tl = timeline(state)
    if len(tl) > KEEP:
        for k in sorted(tl, key=lambda k: _order(tl[k]))[: len(tl) - KEEP]:
            del tl[k]
    state.update(own)
    entries = lives(tl)
    if not entries:
        state["deleted"] = False  # only updates of a name whose life we have not seen: it exists
        return
    decisive = max(entries, key=_order)
    state["deleted"] = not _is_live(decisive)
    if decisive["k"] in ("gone", "dead"):
        state["deleted_at"] = decisive["o"][0]
        if decisive.get("to"):
            state["renamed_to"] = decisive["to"]
        if decisive.get("by"):
            state["deleted_by"] = decisive["by"]
    life = max((e for e in entries if _is_live(e)), key=_order, default=None)
    if life is not None and life["k"] == "moved":
        state["renamed_from"] = life.get("from")
        state["renamed_at"] = life["o"][0]
        for field in CONTENT:
            state.pop(field, None)
        carried = life.get("c")
        if type(carried) is dict:
            state.update(carried)
        if "kind" not in state and own.get("kind"):
            state["kind"] = own["kind"]
