"""Which listing elements need normalizing at all: digests of their exact text.

A sync normalizes an element only when its text is new. The loader keeps, for
every active number, the 128-bit xxh3 digest of the exact element text it was
last read from (table `phone_number_digests`), seeded with its source's
normalizer version and libphonenumber's (`digest_seed`). An element whose
digest is one of the account's is `Unchanged`: same text, same normalizer,
hence the same row, so it is neither decoded nor normalized nor compared
attribute by attribute (the loader only confirms the digest and takes its
number). Every element that is normalized renews its number's digest, whether
or not an attribute changed; the digests live apart from `phone_numbers` so
that this never writes a row there (SPEC §5.3). So a new seed (a
NORMALIZER_VERSION bump, a libphonenumber upgrade) or a change of the
provider's text that changes no attribute costs one normalization of those
elements, after which they are skipped again.

`DigestSet` holds 8 bytes per active row (the high or low half of each digest,
sorted): 8 MB at a million numbers. A half that matches while the whole digest
does not is caught by the loader (`DigestMismatch`); the other half is used on
the next run, so a retry succeeds.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import phonenumbers
import xxhash

from etl.transform import Unchanged

T = TypeVar("T")

_xxh3_128 = xxhash.xxh3_128_digest
_xxh3_128_int = xxhash.xxh3_128_intdigest
_LOW_64 = (1 << 64) - 1
_BUCKET_SHIFT = 48
_BUCKETS = range((1 << (64 - _BUCKET_SHIFT)) + 1)


def digest_seed(source: str, normalizer_version: int) -> int:
    """The seed of a source's digests: its normalizer version and libphonenumber's.

    A new libphonenumber can decide differently whether a number is possible or
    which region it is in, so upgrading it makes the next sync normalize every
    element again, exactly as bumping NORMALIZER_VERSION does.

    >>> digest_seed("sinch", 1) != digest_seed("sinch", 2) != digest_seed("pingram", 1)
    True
    """
    text = f"{source}:{normalizer_version}:phonenumbers {phonenumbers.__version__}"
    return xxhash.xxh64_intdigest(text.encode())


def record_digest(element: bytes, seed: int) -> bytes:
    """The 16-byte digest of one element's exact JSON text under a seed (`digest_seed`).

    >>> record_digest(b'{"number": 1}', 1).hex()
    'f1c9642bd19bb37d481f5216200f73ff'
    >>> record_digest(b'{"number": 1}', 2) != record_digest(b'{"number": 1}', 1)
    True
    """
    return _xxh3_128(element, seed)


class DigestSet:
    """Membership of digests, by one 8-byte half of each (`half` 0: bytes 0-7; 1: bytes 8-15).

    >>> digests = [record_digest(bytes([i]), 1) for i in range(3)]
    >>> known = DigestSet.from_digests(digests[:2], half=1)
    >>> [d in known for d in digests], len(known)
    ([True, True, False], 2)
    """

    __slots__ = ("_buckets", "_keys", "_start")

    def __init__(self, sorted_keys: array[int], *, half: int) -> None:
        """`sorted_keys`: the chosen halves as unsigned big-endian integers, ascending."""
        if sorted_keys.typecode != "Q":
            raise ValueError("DigestSet keys must be an array of unsigned 64-bit integers")
        self._keys = sorted_keys
        self._start = 8 * half
        # Where each run of keys sharing their top 16 bits starts (and the last ends), so a
        # lookup bisects ~15 keys at a million rather than all of them; a list (2.4 MB),
        # because indexing an array makes a new int each time (0.8 s a million, not 0.4).
        self._buckets = [bisect_left(sorted_keys, b << _BUCKET_SHIFT) for b in _BUCKETS]

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
        bucket = key >> _BUCKET_SHIFT
        buckets = self._buckets
        end = buckets[bucket + 1]
        i = bisect_left(self._keys, key, buckets[bucket], end)
        return i < end and self._keys[i] == key

    def __len__(self) -> int:
        """How many keys (active rows with a digest)."""
        return len(self._keys)

    def sort_out(
        self,
        elements: Iterable[bytes],
        seed: int,
        normalize_new: Callable[[bytes, bytes], T],
    ) -> Iterator[Unchanged | T]:
        """`Unchanged` for each element whose digest is known, `normalize_new(element,
        digest)` for each other one.

        `Unchanged.repeated` is set when an earlier element had the same digest (or,
        rarely, another stored digest with the same half). The lookup is `__contains__`
        inlined on the digest as an integer, in the one loop every element goes
        through: 2 µs an element at a million keys, digest included.

        >>> known = DigestSet.from_digests([record_digest(b"1", 1)], half=0)
        >>> for item in known.sort_out([b"1", b"2", b"1"], 1, lambda e, d: e):
        ...     print(item if type(item) is bytes else f"unchanged, repeated={item.repeated}")
        unchanged, repeated=False
        b'2'
        unchanged, repeated=True
        """
        keys, buckets, low_half = self._keys, self._buckets, self._start == 8
        hits = bytearray(len(keys))  # 1 where a key was found once already
        for element in elements:
            value = _xxh3_128_int(element, seed)
            key = value & _LOW_64 if low_half else value >> 64
            bucket = key >> _BUCKET_SHIFT
            end = buckets[bucket + 1]
            i = bisect_left(keys, key, buckets[bucket], end)
            if i < end and keys[i] == key:
                yield Unchanged(value.to_bytes(16, "big"), hits[i] == 1)
                hits[i] = 1
            else:
                yield normalize_new(element, value.to_bytes(16, "big"))


EMPTY = DigestSet(array("Q"), half=0)
