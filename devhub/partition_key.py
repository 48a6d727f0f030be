"""Which partition an event sent with a partition key (and no partition id) goes to.

Event Hubs hashes the key with Bob Jenkins' lookup3 `hashlittle2` (both seeds 0), XORs the two 32-bit
results, keeps the low 16 bits as a signed short, and folds that onto the partitions by its remainder. The
SDKs compute it client-side in their buffered producers, so a keyed event lands on one partition whether the
SDK or the hub chose it. Written here from the algorithm's description
(lookup3.c, public domain) so the hub needs no private SDK module.

The SDKs do not all agree, and this hub follows the Python SDK (5.15, the client it serves), as it always has
(tests/devhub/test_partition_key.py checks it against that SDK's public buffered producer):
- what is hashed: the .NET and Java SDKs hash the key's UTF-8 bytes; the Python SDK one unit per character,
  its code point. The same for ASCII keys, different for any other;
- the fold: .NET and Java take |hash rem n| (the remainder has the hash's sign), the Python SDK Python's
  floored hash % n (never negative). The same for a hash >= 0, often different for a negative one.

Pure: imports nothing of the hub or of the processor.
"""

from __future__ import annotations

from collections.abc import Sequence

_WORD = 0xFFFFFFFF
_GOLDEN = 0xDEADBEEF  # lookup3's initial value


def _rotate(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _WORD


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """lookup3's mix(): folds one full 12-unit block into the state, reversibly."""
    a = ((a - c) & _WORD) ^ _rotate(c, 4)
    c = (c + b) & _WORD
    b = ((b - a) & _WORD) ^ _rotate(a, 6)
    a = (a + c) & _WORD
    c = ((c - b) & _WORD) ^ _rotate(b, 8)
    b = (b + a) & _WORD
    a = ((a - c) & _WORD) ^ _rotate(c, 16)
    c = (c + b) & _WORD
    b = ((b - a) & _WORD) ^ _rotate(a, 19)
    a = (a + c) & _WORD
    c = ((c - b) & _WORD) ^ _rotate(b, 4)
    b = (b + a) & _WORD
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    """lookup3's final(): avalanches the last block into c and b."""
    c = ((c ^ b) - _rotate(b, 14)) & _WORD
    a = ((a ^ c) - _rotate(c, 11)) & _WORD
    b = ((b ^ a) - _rotate(a, 25)) & _WORD
    c = ((c ^ b) - _rotate(b, 16)) & _WORD
    a = ((a ^ c) - _rotate(c, 4)) & _WORD
    b = ((b ^ a) - _rotate(a, 14)) & _WORD
    c = ((c ^ b) - _rotate(b, 24)) & _WORD
    return a, b, c


def _words(units: Sequence[int]) -> list[int]:
    """The units as little-endian 32-bit words, zero-padded to whole 12-unit blocks. Summed rather than OR-ed:
    a unit above 255 (a code point) carries into the next one's bits, which is what the Python SDK's arithmetic
    does."""
    u = list(units) + [0] * (-len(units) % 12)
    return [(u[i] + (u[i + 1] << 8) + (u[i + 2] << 16) + (u[i + 3] << 24)) & _WORD for i in range(0, len(u), 4)]


def hashlittle2(units: Sequence[int], primary_seed: int = 0, secondary_seed: int = 0) -> tuple[int, int]:
    """lookup3's two 32-bit hashes (c, b) of `units` (bytes, or any small non-negative integers)."""
    a = b = (_GOLDEN + len(units) + primary_seed) & _WORD
    c = (a + secondary_seed) & _WORD
    if not units:
        return c, b
    words = _words(units)
    # Every block but the last goes through mix(); the last (1 to 12 units, zero-padded) through final().
    for i in range(0, len(words) - 3, 3):
        a, b, c = _mix((a + words[i]) & _WORD, (b + words[i + 1]) & _WORD, (c + words[i + 2]) & _WORD)
    a, b, c = _final((a + words[-3]) & _WORD, (b + words[-2]) & _WORD, (c + words[-1]) & _WORD)
    return c, b


def key_hash(key: str) -> int:
    """The key's 16-bit signed hash code, as the Python SDK computes it (one unit per code point)."""
    if not key:
        return 0
    primary, secondary = hashlittle2([ord(char) for char in key])
    low = (primary ^ secondary) & 0xFFFF
    return low - 0x10000 if low & 0x8000 else low


def partition_for_key(key: str, partition_ids: Sequence[str]) -> str:
    """The partition (one of `partition_ids`, in the hub's order) that events with this key go to."""
    return partition_ids[key_hash(key) % len(partition_ids)]  # floored: see the module's docstring
