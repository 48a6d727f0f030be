"""How a parallel ingest and its fold processes talk, defined once and imported by both ends.

The parent (`processor.ingest_shards`) starts each fold process (`processor.ingest_process`) with its settings
in the environment (`ENV`, JSON) and writes frames to its stdin:

    Messages(items)    messages to fold, each (label, body, Event Grid's delivery kind[, AMQP body section])
    Done()             the input has ended: finish the fold, commit, answer

each as a 4-byte big-endian length and a msgpack array (msgspec structs, `array_like`). End of file before
`Done` means the parent is gone: the fold process exits without committing what it holds, as a crash would
(what it committed before stands: every commit is a join, so a later run completes it).

The fold process answers `Summary` (its outcomes) on stdout and exits 0; failing, it says why on stderr, its
last line the reason, and exits 1.

Imports msgspec and the core's tally only.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import msgspec

from processor.core.model import Tally

ENV = "PROCESSOR_FOLD_SETTINGS"  # the settings, as `processor.config.settings_to_json` writes them
_HEADER = struct.Struct(">I")
# (label, body, delivery kind[, AMQP body section]) as `processor.ingest` takes it: left untyped on the wire, so
# that neither end reshapes each message (msgspec decodes one tuple shape only when typed; both ends are ours).
WireMessage = tuple[Any, ...]


class Messages(msgspec.Struct, tag="messages", array_like=True, gc=False):
    items: list[WireMessage]


class Done(msgspec.Struct, tag="done", array_like=True):
    pass


class Summary(msgspec.Struct, tag="summary", array_like=True):
    read: int
    outcomes: list[tuple[str, str, int]]  # (outcome, event type, count)
    notes: list[tuple[str, str, int]]  # (what, event type, count)

    @classmethod
    def of(cls, tally: Tally) -> Summary:
        return cls(
            tally.read,
            [(o, t, n) for (o, t), n in tally.by_outcome_type.items()],
            [(w, t, n) for (w, t), n in tally.notes.items()],
        )

    def add_to(self, tally: Tally) -> None:
        tally.read += self.read
        tally.by_outcome_type.update(Counter({(o, t): n for o, t, n in self.outcomes}))
        tally.notes.update(Counter({(w, t): n for w, t, n in self.notes}))


ToFold = Messages | Done

_encoder = msgspec.msgpack.Encoder()
_to_fold = msgspec.msgpack.Decoder(ToFold)
_summary = msgspec.msgpack.Decoder(Summary)


def encode_frame(frame: ToFold | Summary) -> bytearray:
    """The frame with its length header, ready to write."""
    out = bytearray(_HEADER.size)
    _encoder.encode_into(frame, out, _HEADER.size)
    _HEADER.pack_into(out, 0, len(out) - _HEADER.size)
    return out


def frame_length(header: bytes) -> int:
    return int(_HEADER.unpack(header)[0])


HEADER_SIZE = _HEADER.size


def decode_to_fold(data: bytes) -> ToFold:
    return _to_fold.decode(data)


def decode_summary(data: bytes) -> Summary:
    return _summary.decode(data)
