"""Stream a response body and the records of its JSON listing: flat memory, exact decimals.

`open_response_body` turns a streamed response into a byte stream whose
transport failures are already SourceErrors (mapped by `etl.http.to_source_error`).
The parsers read any byte stream (a response or an archive) and yield the
listing's *elements*: the exact JSON text of each array element, as UTF-8 bytes,
with memory bounded by one 64 KiB read plus one element. Decoding an element is
a separate step (`Listing.decode`, or `Listing.records` for both), because a
sync only decodes the elements whose text it has not loaded before (see
`etl.transform.digest`).

Splitting: a small scanner walks the JSON structure around the listing's array.
Inside it, `msgspec` splits all the complete elements of the buffer in one C
call (0.5 µs an element, validating their syntax); where that cannot be used
(an element that is not an object, or one msgspec refuses) the scanner falls
back to the C `json` decoder, one element at a time (6-8 µs an element).
Decoding gives what the `json` decoder with `parse_float=Decimal` gives, except
that NaN and Infinity are refused (msgspec decodes, and `json` takes what msgspec
refuses), so numbers come out as `int` or `decimal.Decimal` (never `float`), and
each object record keeps its exact text
(`RawRecord.json_text`), which the loader stores as `raw` without serializing it
again.

Every problem surfaces *while iterating*: an invalid or incomplete body is a
`MalformedResponse` naming the source, a read timeout mid-body a
`RetriableSourceError`.
"""

from __future__ import annotations

import codecs
import http.client
import io
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import msgspec
import requests
import urllib3.exceptions

from etl.errors import MalformedResponse, SourceError
from etl.http import BODY_CHUNK, is_transport_error, to_source_error
from etl.transform import RawRecord

_WHITESPACE = " \t\r\n"
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_NUMBER_LOOKAHEAD = 64  # a number split across reads is shorter than this
MAX_ELEMENT_CHARS = 16 * 1024 * 1024  # a larger single record is taken as malformed


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
# The same values as _DECODER, about 2 µs against 4.1 a Sinch record; what msgspec refuses
# (a lone surrogate escape, NaN, a 4,300-digit integer, deep nesting) goes to _DECODER.
_QUICK_DECODE = msgspec.json.Decoder(float_hook=Decimal).decode
_SPLIT = msgspec.json.Decoder(list[msgspec.Raw]).decode
_COMPACT_END = "},{"  # where a batch of elements most likely ends ("}" of an object element)
_ELEMENT_END = "},"  # where it may end otherwise (pretty-printed JSON, "},\n  {")
_BATCH_TRIES = 4  # candidate ends tried before one element is taken the slow way
_KIND = {"{": "an object", "[": "an array", '"': "a string", "": "an empty body"}


class _GuardedRaw(io.RawIOBase):
    """The decoded body of a streamed response; transport errors become SourceErrors."""

    def __init__(
        self, response: requests.Response, *, source: str, account_id: str, secrets: set[str]
    ) -> None:
        super().__init__()
        self._raw = response.raw
        self._raw.decode_content = True
        self._where = (source, account_id, urlsplit(response.url).hostname)
        self._secrets = secrets

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read up to len(buffer) decoded bytes; 0 at the end of the body."""
        try:
            data = self._raw.read(len(buffer))
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            source, account_id, host = self._where
            raise to_source_error(
                exc,
                source=source,
                account_id=account_id,
                secrets=self._secrets,
                host=host,
                in_body=True,
            ) from exc
        size = len(data)
        buffer[:size] = data
        return size


@contextmanager
def streamed_body(
    response: requests.Response, *, source: str, account_id: str, secrets: set[str]
) -> Iterator[BinaryIO]:
    """`open_response_body` as a context manager that closes the response on exit."""
    try:
        yield open_response_body(response, source=source, account_id=account_id, secrets=secrets)
    finally:
        response.close()


def open_response_body(
    response: requests.Response, *, source: str, account_id: str, secrets: set[str] | None = None
) -> BinaryIO:
    """A buffered byte stream of a streamed response's decoded body (64 KiB reads)."""
    raw = _GuardedRaw(response, source=source, account_id=account_id, secrets=secrets or set())
    return io.BufferedReader(raw, buffer_size=BODY_CHUNK)


@dataclass
class Listing:
    """The elements of one listing, streamed; `extras` is complete once they are exhausted.

    `elements` yields each array element's exact JSON text (UTF-8 bytes);
    `decode` turns one into its record, and `records` does both (it consumes
    `elements`: iterate one or the other).
    """

    elements: Iterator[bytes]
    extras: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    account_id: str = ""

    @property
    def records(self) -> Iterator[Any]:
        """The decoded elements (see `decode`)."""
        for element in self.elements:
            yield self.decode(element)

    def decode(self, element: bytes) -> Any:
        """One element's value: an object as a RawRecord carrying its text; numbers never float.

        MalformedResponse when the text is not one valid JSON value.
        """
        try:
            text = element.decode("utf-8")
            try:
                value = _QUICK_DECODE(element)
            except (msgspec.MsgspecError, RecursionError):
                value = _DECODER.decode(text)  # accepts it, or says what is wrong
            return _record(value, text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, NaN, 4,300 digits
            raise MalformedResponse(
                f"a listing element is not valid JSON: {type(exc).__name__}: {exc}",
                source=self.source,
                account_id=self.account_id,
            ) from None


class _Malformed(Exception):
    """A structural problem found by the scanner; `_guard` adds source and account."""


class _Truncated(_Malformed):
    """The body ended inside the JSON."""


class _Scanner:
    """Walks a JSON text read in chunks from a byte stream, one value at a time."""

    def __init__(self, body: BinaryIO) -> None:
        self._body = body
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self._buf = ""
        self._pos = 0
        self._offset = 0  # characters dropped from the front of _buf so far
        self._eof = False
        self._cut_limit = 0  # batch ends at or after this were refused (0: none were)

    def _fill(self, size: int = BODY_CHUNK) -> bool:
        """Append one more chunk to the buffer; False at the end of the body."""
        if self._eof:
            return False
        chunk = self._body.read(size)
        try:
            text = self._decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise _Malformed(
                f"invalid UTF-8 near character {self._offset + len(self._buf)}"
            ) from exc
        self._eof = not chunk
        if self._pos:
            self._offset += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        self._cut_limit = 0
        self._buf += text
        return True

    def peek(self) -> str:
        """The next non-whitespace character, or "" at the end of the body."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._fill():
                return ""

    def take(self, expected: str) -> str:
        """Consume the next character if it is one of `expected`; return it."""
        char = self.peek()
        if char == "":
            raise _Truncated("premature end of the body")
        if char not in expected:
            where = self._offset + self._pos
            raise _Malformed(f"unexpected character at character {where}")
        self._pos += 1
        return char

    def value(self) -> tuple[Any, str]:
        """The next complete JSON value and its exact text."""
        self.peek()
        while True:
            start = self._pos
            try:
                obj, end = _DECODER.raw_decode(self._buf, start)
            except json.JSONDecodeError as exc:
                pending = len(self._buf) - start
                if pending > MAX_ELEMENT_CHARS:
                    raise _Malformed(f"{exc.msg} at character {self._offset + exc.pos}") from None
                # Read as much again as the element holds so far: a large element is
                # decoded a logarithmic number of times, not once per 64 KiB.
                if not self._fill(max(BODY_CHUNK, pending)):
                    if exc.pos >= len(self._buf) or exc.msg.startswith("Unterminated"):
                        raise _Truncated("premature end of the body") from None
                    raise _Malformed(f"{exc.msg} at character {self._offset + exc.pos}") from None
                continue
            except (ValueError, RecursionError) as exc:  # NaN, a 4,300-digit integer, deep nesting
                where = self._offset + start
                raise _Malformed(
                    f"{type(exc).__name__} in the value at character {where}"
                ) from None
            if (
                not self._eof
                and not isinstance(obj, dict | list | str)
                and (
                    end == len(self._buf)
                    or (
                        self._buf[end] in _NUMBER_CHARS and len(self._buf) - end < _NUMBER_LOOKAHEAD
                    )
                )
            ):
                self._fill()  # a number ("0" of "0.25") may go on in the next chunk
                continue
            self._pos = end
            return obj, self._buf[start:end]

    def batch(self) -> list[bytes]:
        """The texts of the complete elements the buffer holds, split by one msgspec call.

        Starts at an object element; stops before the "," that follows the last
        element it returns (of any kind). [] when it cannot take even one (the
        caller then takes one element the slow way). A candidate end (the "}"
        of "},{", else of "},") may fall inside an element: msgspec then refuses
        the array, since a cut inside a string or a nested value never parses as
        a whole one, and the next try looks before it; so does every later call
        on this buffer. msgspec also refuses what `value` would decide
        differently (a lone surrogate escape, a 20-digit integer, deep nesting).
        """
        self.peek()
        if self._buf.find(_ELEMENT_END, self._pos) < 0:
            self._fill()  # the element ends beyond this buffer: read on
        start, buf = self._pos, self._buf
        limit = self._cut_limit if self._cut_limit > start else len(buf)
        for _ in range(_BATCH_TRIES):
            cut = buf.rfind(_COMPACT_END, start, limit)
            if cut < 0:
                cut = buf.rfind(_ELEMENT_END, start, limit)
                if cut < 0:
                    return []
            try:
                raws = _SPLIT("[" + buf[start : cut + 1] + "]")
            except (msgspec.DecodeError, RecursionError):
                limit = self._cut_limit = cut
                continue
            self._pos = cut + 1
            return [bytes(raw) for raw in raws]
        return []

    def end(self) -> None:
        """Nothing but whitespace may follow the top-level value."""
        if self.peek() != "":
            raise _Malformed("trailing garbage after the JSON value")


def _record(obj: Any, text: str) -> Any:
    """An object element as a RawRecord carrying its JSON text; other values as they are."""
    if type(obj) is dict:
        record = RawRecord(obj)
        record.json_text = text
        return record
    return obj


def _elements(scanner: _Scanner) -> Iterator[bytes]:
    """The element texts of the array whose "[" was just consumed, up to its "]"."""
    if scanner.peek() == "]":
        scanner.take("]")
        return
    while True:
        batch = scanner.batch() if scanner.peek() == "{" else []
        if batch:
            yield from batch
        else:
            _, text = scanner.value()
            yield text.encode()
        if scanner.take(",]") == "]":
            return


def _guard(elements: Iterator[bytes], *, source: str, account_id: str) -> Iterator[bytes]:
    """Re-raise every parse or transport failure as the tree's SourceError."""
    try:
        yield from elements
    except SourceError:
        raise
    except _Truncated as exc:
        raise MalformedResponse(
            f"the response body ended before its JSON was complete (truncated?): {exc}",
            source=source,
            account_id=account_id,
        ) from exc
    except _Malformed as exc:
        raise MalformedResponse(
            f"the response body is not valid JSON: {exc}", source=source, account_id=account_id
        ) from exc
    except Exception as exc:
        if not is_transport_error(exc):
            raise
        raise to_source_error(exc, source=source, account_id=account_id, in_body=True) from exc


def _shape_error(expected: str, found: str, *, source: str, account_id: str) -> MalformedResponse:
    return MalformedResponse(
        f"expected a JSON {expected} at the top level of the response, got "
        + _KIND.get(found, "a scalar"),
        source=source,
        account_id=account_id,
    )


def parse_array(body: BinaryIO, *, source: str, account_id: str) -> Listing:
    """The items of a top-level JSON array, streamed.

    >>> import io
    >>> listing = parse_array(io.BytesIO(b'[{"a": 1.10}, 2]'), source="s", account_id="a")
    >>> list(listing.records)
    [{'a': Decimal('1.10')}, 2]
    >>> list(parse_array(io.BytesIO(b'[{"a": 1.10}, 2]'), source="s", account_id="a").elements)
    [b'{"a": 1.10}', b'2']
    """

    def elements() -> Iterator[bytes]:
        scanner = _Scanner(body)
        first = scanner.peek()
        if first != "[":
            raise _shape_error("array", first, source=source, account_id=account_id)
        scanner.take("[")
        yield from _elements(scanner)
        scanner.end()

    return Listing(
        _guard(elements(), source=source, account_id=account_id),
        source=source,
        account_id=account_id,
    )


def parse_object_array(
    body: BinaryIO,
    *,
    source: str,
    account_id: str,
    array_key: str,
    extra_keys: Mapping[str, str],
) -> Listing:
    """The items of the array under `array_key` of a top-level object, streamed.

    Top-level members named in `extra_keys` (JSON name → extras name) land in
    `extras`, before or after the array; a missing one is None.

    >>> import io
    >>> listing = parse_object_array(io.BytesIO(b'{"n": [{"x": "1"}], "s": "+1"}'),
    ...     source="s", account_id="a", array_key="n", extra_keys={"s": "shared"})
    >>> list(listing.records), listing.extras
    ([{'x': '1'}], {'shared': '+1'})
    """
    listing = Listing(
        iter(()),
        extras={name: None for name in extra_keys.values()},
        source=source,
        account_id=account_id,
    )

    def elements() -> Iterator[bytes]:
        scanner = _Scanner(body)
        first = scanner.peek()
        if first != "{":
            raise _shape_error("object", first, source=source, account_id=account_id)
        scanner.take("{")
        seen_array = False
        if scanner.peek() != "}":
            while True:
                key, _ = scanner.value()
                if not isinstance(key, str):
                    raise _Malformed("an object key is not a string")
                scanner.take(":")
                if key == array_key:
                    if seen_array:
                        raise _Malformed(f'"{array_key}" appears twice in the response')
                    found = scanner.peek()
                    if found != "[":
                        raise MalformedResponse(
                            f'"{array_key}" in the response is not an array but '
                            + _KIND.get(found, "a scalar"),
                            source=source,
                            account_id=account_id,
                        )
                    scanner.take("[")
                    seen_array = True
                    yield from _elements(scanner)
                else:
                    value, _ = scanner.value()
                    if key in extra_keys:
                        listing.extras[extra_keys[key]] = value
                if scanner.take(",}") == "}":
                    break
        else:
            scanner.take("}")
        scanner.end()
        if not seen_array:
            raise MalformedResponse(
                f'the response has no "{array_key}" array', source=source, account_id=account_id
            )

    listing.elements = _guard(elements(), source=source, account_id=account_id)
    return listing
