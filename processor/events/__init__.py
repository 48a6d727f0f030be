"""Decoding of Event Grid / CloudEvents bodies, the catalog of known types (and users' reducer declarations),
times and sequencers. The lowest layer: imports nothing of the processor."""

from processor.events.envelope import DecodeLimits, DecodeResult, Event, Malformed, decode_body
from processor.events.timefmt import InvalidTime, normalize_time

__all__ = [
    "DecodeLimits",
    "DecodeResult",
    "Event",
    "InvalidTime",
    "Malformed",
    "decode_body",
    "normalize_time",
]
