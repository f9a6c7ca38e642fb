"""Which listing elements need normalizing at all: digests of their exact text.

A sync normalizes an element only when its text is new. Every stored row keeps
`raw_digest`, the 128-bit xxh3 digest of the exact element text it was
normalized from, seeded with its source's normalizer version. An element whose
digest is one of the account's active rows' is `Unchanged`: same text, same
normalizer, hence the same row, so it is neither decoded nor normalized nor
compared attribute by attribute (the loader only confirms the digest and takes
the row's number). Bumping a source's `NORMALIZER_VERSION` changes every
digest, so the next sync normalizes every element again.

`DigestSet` holds 8 bytes per active row (the high or low half of each digest,
sorted): 8 MB at a million numbers. A half that matches while the whole digest
does not is caught by the loader (`DigestMismatch`); the other half is used on
the next run, so a retry succeeds.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

import xxhash

_xxh3_128 = xxhash.xxh3_128_digest


def record_digest(element: bytes, normalizer_version: int) -> bytes:
    """The 16-byte digest of one element's exact JSON text under a normalizer version.

    >>> record_digest(b'{"number": 1}', 1).hex()
    'f1c9642bd19bb37d481f5216200f73ff'
    >>> record_digest(b'{"number": 1}', 2) != record_digest(b'{"number": 1}', 1)
    True
    """
    return _xxh3_128(element, normalizer_version)


class DigestSet:
    """Membership of digests, by one 8-byte half of each (`half` 0: bytes 0-7; 1: bytes 8-15).

    >>> digests = [record_digest(bytes([i]), 1) for i in range(3)]
    >>> known = DigestSet.from_digests(digests[:2], half=1)
    >>> [d in known for d in digests], len(known)
    ([True, True, False], 2)
    """

    __slots__ = ("_keys", "_start")

    def __init__(self, sorted_keys: array[int], *, half: int) -> None:
        """`sorted_keys`: the chosen halves as unsigned big-endian integers, ascending."""
        if sorted_keys.typecode != "Q":
            raise ValueError("DigestSet keys must be an array of unsigned 64-bit integers")
        self._keys = sorted_keys
        self._start = 8 * half

    @classmethod
    def from_digests(cls, digests: Iterable[bytes], *, half: int) -> DigestSet:
        """A set built from whole digests (tests and small listings)."""
        start = 8 * half
        keys = sorted(int.from_bytes(d[start : start + 8], "big") for d in digests)
        return cls(array("Q", keys), half=half)

    def __contains__(self, digest: object) -> bool:
        """Whether the digest's half is one of the keys."""
        if not isinstance(digest, bytes) or not self._keys:
            return False
        key = int.from_bytes(digest[self._start : self._start + 8], "big")
        keys = self._keys
        i = bisect_left(keys, key)
        return i < len(keys) and keys[i] == key

    def __len__(self) -> int:
        """How many keys (active rows with a digest)."""
        return len(self._keys)


EMPTY = DigestSet(array("Q"), half=0)
