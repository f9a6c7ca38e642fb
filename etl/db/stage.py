"""Stage a listing: stream `NumberRow`/`Rejection` items into a temporary table.

The listing goes to the server through one binary `COPY ... FROM STDIN`
(psycopg 3), row by row as the iterator yields them, so memory stays flat
however long the listing is; psycopg sends the rows in ~32 kB blocks. Each row
carries its ordinal in the listing. A rejection is staged too, with its reason
and, when the number was readable, its `e164` (which keeps that number from
being marked removed). The temporary table is dropped at commit.

`raw` and rejected records travel as JSON text written by `to_json_text`, which
keeps `Decimal` values exactly as they are (`0.10` stays `0.10`), and are
staged as `jsonb`.

An `Unchanged` element is staged as its ordinal and digest only (`e164` NULL),
written as ready-made binary COPY rows: 0.3 µs each against ~2 µs through
`write_row` with twenty NULLs.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring
from operator import attrgetter
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper
from psycopg.postgres import types as postgres_types
from sqlalchemy import Connection, text

from etl.transform import ATTRIBUTE_COLUMNS, LoadItem, NumberRow, RawRecord, Rejection, Unchanged

STAGE_TABLE = "_numbers_stage"
# Escapes in JSON text that jsonb may refuse: \u0000 and any surrogate (\ud800-\udfff).
_JSONB_REFUSES = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")

# psycopg type names of the attribute columns, for binary COPY (see etl.db.schema).
_COPY_TYPES: dict[str, str] = {
    "capabilities": "text[]",
    "group_id": "int8",
    "registered_at": "timestamptz",
    "released_at": "timestamptz",
    "expires_at": "timestamptz",
    "cost_amount": "numeric",
}
ATTRIBUTE_TYPES: tuple[str, ...] = tuple(_COPY_TYPES.get(c, "text") for c in ATTRIBUTE_COLUMNS)
STAGE_COLUMNS: tuple[str, ...] = ("ord", "raw_digest", "e164", "reason", *ATTRIBUTE_COLUMNS, "raw")
_STAGE_TYPES: tuple[str, ...] = ("int8", "bytea", "text", "text", *ATTRIBUTE_TYPES, "jsonb")
_NO_ATTRIBUTES: tuple[None, ...] = (None,) * len(ATTRIBUTE_COLUMNS)
_get_attributes = attrgetter(*ATTRIBUTE_COLUMNS)
_encode_str: Callable[[str], str] = encode_basestring  # C: a JSON string literal, no ASCII escaping


_TEXT_OID = postgres_types["text"].oid
_ARRAY_HEAD = struct.Struct("!iiiii")  # ndim, has-null flag, element oid, length, lower bound
_EMPTY_ARRAY = struct.pack("!iii", 0, 0, _TEXT_OID)
_LENGTH = struct.Struct("!i")
_NULL_LENGTH = _LENGTH.pack(-1)
# Binary COPY framing of a staged Unchanged: field count, ord (int8), digest (bytea), NULLs.
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_UNCHANGED_HEAD = struct.Struct("!hiqi16s")
_UNCHANGED_TAIL = _NULL_LENGTH * (len(STAGE_COLUMNS) - 2)
_UNCHANGED_FLUSH = 64 * 1024
_BINARY_TRAILER = struct.pack("!h", -1)


class JsonText(str):
    """JSON text that is already serialized (what JsonTextBinaryDumper is registered for)."""


class JsonTextBinaryDumper(Dumper):
    """Binary `jsonb` from JSON text: the version byte, then the text.

    The server parses it while COPY runs, in parallel with the Python side
    serializing the next rows, instead of later in the INSERT.
    """

    format = pq.Format.BINARY
    oid = postgres_types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        """`\\x01` followed by the UTF-8 text (a lone surrogate becomes `?`)."""
        json_text: str = obj
        return b"\x01" + json_text.encode("utf-8", "replace")


class TextArrayBinaryDumper(Dumper):
    """Binary `text[]` from a tuple or list of str, without psycopg's generic list machinery.

    `NumberRow.capabilities` is a tuple, which psycopg's array dumper does not
    take, and the generic dumper is pure Python; this one is a few C calls.
    """

    format = pq.Format.BINARY
    oid = postgres_types["text"].array_oid

    def dump(self, obj: Any) -> bytes:
        """The binary array representation of a sequence of str (None is NULL).

        A listing repeats a handful of capability sets, so tuples are encoded once
        (a bounded cache) instead of once per row.
        """
        if not obj:
            return _EMPTY_ARRAY
        if type(obj) is tuple:
            cached = _ARRAY_CACHE.get(obj)
            if cached is None:
                cached = _encode_text_array(obj)
                if len(_ARRAY_CACHE) < _ARRAY_CACHE_SIZE:
                    _ARRAY_CACHE[obj] = cached
            return cached
        return _encode_text_array(obj)


_ARRAY_CACHE: dict[tuple[Any, ...], bytes] = {}
_ARRAY_CACHE_SIZE = 4096


def _encode_text_array(obj: Any) -> bytes:
    """Encode a non-empty sequence of str (None is NULL) as a binary one-dimensional text[]."""
    has_null = 0
    parts = [b""]
    for item in obj:
        if item is None:
            has_null = 1
            parts.append(_NULL_LENGTH)
        else:
            data = item.encode()
            parts.append(_LENGTH.pack(len(data)) + data)
    parts[0] = _ARRAY_HEAD.pack(1, has_null, _TEXT_OID, len(obj), 1)
    return b"".join(parts)


def to_json_text(value: Any) -> str:
    """JSON text for a JSON-able value, with `Decimal` written as its literal digits.

    `json.dumps` cannot write a Decimal as a number without going through
    float; this does, so the amount is stored in `jsonb` exactly as received.
    Strings are written with their characters (no ASCII escaping), except
    U+0000, which `jsonb` cannot hold and which becomes U+FFFD.

    >>> to_json_text({"amount": Decimal("0.10"), "tags": ["a", None, True], "n": 3})
    '{"amount":0.10,"tags":["a",null,true],"n":3}'

    Raises TypeError for a value that is not JSON-able, and ValueError for a
    non-finite number (NaN, Infinity).
    """
    parts: list[str] = []
    _write_json(value, parts.append)
    json_text = "".join(parts)
    if "\\u0000" in json_text:  # a NUL (or a rare literal backslash-u0000): redo without NULs
        parts.clear()
        _write_json(_without_nul(value), parts.append)
        json_text = "".join(parts)
    return json_text


def _write_json(value: Any, out: Callable[[str], None]) -> None:
    kind = type(value)
    if kind is str:
        out(_encode_str(value))
    elif kind is dict:
        out("{")
        first = True
        for key, item in value.items():
            if not first:
                out(",")
            first = False
            out(_encode_str(key) if type(key) is str else _encode_key(key))
            out(":")
            _write_json(item, out)
        out("}")
    elif kind is list or kind is tuple:
        out("[")
        first = True
        for item in value:
            if not first:
                out(",")
            first = False
            _write_json(item, out)
        out("]")
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif kind is int:
        out(int.__repr__(value))
    elif kind is Decimal:
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        out(str(value))
    else:
        _write_json(_as_json_type(value), out)


def _as_json_type(value: Any) -> Any:
    """The slow path of `to_json_text`: subclasses of the JSON types, and floats."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        return Decimal(float.__repr__(value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"a {type(value).__name__} is not JSON-able")


def _encode_key(key: Any) -> str:
    if isinstance(key, str):
        return _encode_str(str.__str__(key))
    raise TypeError(f"a JSON object key must be a str, not {type(key).__name__}")


def _without_nul(value: Any) -> Any:
    """The value with U+0000 in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return str.__str__(value).replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def to_json_text_lenient(value: Any) -> str:
    """`to_json_text`, or when the value is not JSON-able, its `str()` as a JSON string.

    A `RawRecord` already carries the exact text it was parsed from: that text is
    used as it is, unless it holds an escape that jsonb refuses (U+0000, or a
    surrogate, which jsonb takes only in valid pairs); then the record is
    serialized again, with those characters replaced.
    """
    if type(value) is RawRecord and not _JSONB_REFUSES.search(value.json_text):
        return value.json_text
    try:
        return to_json_text(value)
    except (TypeError, ValueError, RecursionError):
        return to_json_text(str(value))


@dataclass(frozen=True, slots=True)
class StagedCounts:
    """What `stage_listing` saw: all items, how many were rejections, how many unchanged."""

    fetched: int
    rejections: int
    unchanged: int = 0
    repeated: int = 0  # unchanged items whose digest an earlier one had

    @property
    def normalized(self) -> int:
        """Items staged as normalized rows (neither rejections nor unchanged)."""
        return self.fetched - self.unchanged - self.rejections


def create_stage_table(conn: Connection) -> None:
    """Create the (empty) temporary staging table, dropped at commit."""
    columns = ", ".join(
        f"{name} {kind}" for name, kind in zip(STAGE_COLUMNS, _STAGE_TYPES, strict=True)
    )
    conn.execute(text(f"CREATE TEMPORARY TABLE {STAGE_TABLE} ({columns}) ON COMMIT DROP"))


def stage_listing(
    conn: Connection,
    items: Iterable[LoadItem],
    *,
    source: str,
    account_id: str,
) -> StagedCounts:
    """COPY every item into the staging table, in one streamed binary COPY.

    An exception raised by `items` propagates (the COPY is aborted and the
    caller's transaction must roll back). An item of another source or
    account is a programmer error (ValueError).
    """
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    fetched = rejections = unchanged = repeated = 0
    statement = f"COPY {STAGE_TABLE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    pack_unchanged = _UNCHANGED_HEAD.pack
    ncols = len(STAGE_COLUMNS)
    pending = bytearray()
    with driver.cursor() as cursor:
        cursor.adapters.register_dumper(tuple, TextArrayBinaryDumper)
        cursor.adapters.register_dumper(JsonText, JsonTextBinaryDumper)
        with cursor.copy(statement) as copy:
            copy.set_types(list(_STAGE_TYPES))
            copy.write(_BINARY_SIGNATURE)  # rows below go both through write_row and write
            for item in items:
                fetched += 1
                if isinstance(item, Unchanged):
                    unchanged += 1
                    repeated += item.repeated
                    pending += pack_unchanged(ncols, 8, fetched, 16, item.digest)
                    pending += _UNCHANGED_TAIL
                    if len(pending) > _UNCHANGED_FLUSH:
                        copy.write(pending)
                        pending = bytearray()
                    continue
                if item.source != source or item.account_id != account_id:
                    raise ValueError(
                        f"item {fetched} is for {item.source}/{item.account_id}, "
                        f"not {source}/{account_id}"
                    )
                if isinstance(item, NumberRow):
                    row = (
                        fetched,
                        item.raw_digest,
                        item.e164,
                        None,
                        *_get_attributes(item),
                        item.raw,
                    )
                elif isinstance(item, Rejection):
                    rejections += 1
                    row = (fetched, None, item.e164, item.reason, *_NO_ATTRIBUTES, item.record)
                else:
                    raise TypeError(f"item {fetched} is a {type(item).__name__}, not a NumberRow")
                copy.write_row((*row[:-1], to_json_text_lenient(row[-1])))
            if fetched == unchanged:  # no write_row, so psycopg will not end the data itself
                pending += _BINARY_TRAILER
            if pending:
                copy.write(pending)
    return StagedCounts(
        fetched=fetched, rejections=rejections, unchanged=unchanged, repeated=repeated
    )
