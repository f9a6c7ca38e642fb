"""Stream a response body and the records of its JSON listing: flat memory, exact decimals.

`open_response_body` turns a streamed response into a byte stream whose
transport failures are already SourceErrors (mapped by `etl.http.to_source_error`).
The parsers read any byte stream (a response or an archive) with ijson: numbers
come out as `int` or `decimal.Decimal` (never `float`), records are produced
lazily, and every problem surfaces *while iterating*: an invalid or incomplete
body is a `MalformedResponse` naming the source, a read timeout mid-body a
`RetriableSourceError`.
"""

from __future__ import annotations

import http.client
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import ijson
import requests
import urllib3.exceptions

from etl.errors import MalformedResponse, SourceError
from etl.http import BODY_CHUNK, is_transport_error, to_source_error

_JSON_WHITESPACE = b" \t\r\n"
_CONTAINER_START = {"start_map", "start_array"}
_CONTAINER_END = {"end_map", "end_array"}
_EVENT_KIND = {
    "start_map": "an object",
    "start_array": "an array",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


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


def open_response_body(
    response: requests.Response, *, source: str, account_id: str, secrets: set[str] | None = None
) -> BinaryIO:
    """A buffered byte stream of a streamed response's decoded body (64 KiB reads)."""
    raw = _GuardedRaw(response, source=source, account_id=account_id, secrets=secrets or set())
    return io.BufferedReader(raw, buffer_size=BODY_CHUNK)


@dataclass
class Listing:
    """The records of one listing, streamed; `extras` is complete once `records` is exhausted."""

    records: Iterator[Any]
    extras: dict[str, Any] = field(default_factory=dict)


class _Replay:
    """A byte stream that first returns `head`, then the rest of `body`."""

    def __init__(self, head: bytes, body: BinaryIO) -> None:
        self._head = head
        self._body = body

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all if negative): the head first, then the body."""
        if not self._head:
            return self._body.read(size)
        if size < 0:
            data, self._head = self._head + self._body.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


def _first_byte(body: BinaryIO) -> tuple[bytes, bytes]:
    """(first non-whitespace byte or b"" at end of body, the bytes read so far)."""
    read = b""
    while chunk := body.read(BODY_CHUNK):
        read += chunk
        stripped = read.lstrip(_JSON_WHITESPACE)
        if stripped:
            return stripped[:1], read
    return b"", read


def _kind(first: bytes) -> str:
    return {b"{": "an object", b"[": "an array", b'"': "a string"}.get(first, "a scalar")


def _guard(records: Iterator[Any], *, source: str, account_id: str) -> Iterator[Any]:
    """Re-raise every parse or transport failure as the tree's SourceError."""
    try:
        yield from records
    except SourceError:
        raise
    except ijson.JSONError as exc:
        detail = _first_line(exc)
        if "premature EOF" in detail or "Incomplete JSON" in detail:
            text = f"the response body ended before its JSON was complete (truncated?): {detail}"
        else:
            text = f"the response body is not valid JSON: {detail}"
        raise MalformedResponse(text, source=source, account_id=account_id) from exc
    except Exception as exc:
        if not is_transport_error(exc):
            raise
        raise to_source_error(exc, source=source, account_id=account_id, in_body=True) from exc


def _first_line(exc: BaseException) -> str:
    """yajl's message without the excerpt of the body it quotes after it (or in a bytes repr)."""
    text = str(exc).strip()
    if text[:2] in {"b'", 'b"'}:
        text = text[2:]
    first = re.split(r"\n|\\n", text, maxsplit=1)[0].strip()
    return first or type(exc).__name__


def _build(events: Iterator[tuple[str, str, Any]], event: str, value: Any) -> Any:
    """The value that starts with `event`, reading the rest of its events."""
    if event == "start_map":
        record: dict[str, Any] = {}
        key = ""
        for _, ev, val in events:
            if ev == "map_key":
                key = val
            elif ev == "end_map":
                return record
            elif ev in _CONTAINER_START:
                record[key] = _build(events, ev, val)
            else:
                record[key] = val
    elif event == "start_array":
        items: list[Any] = []
        for _, ev, val in events:
            if ev == "end_array":
                return items
            items.append(_build(events, ev, val) if ev in _CONTAINER_START else val)
    else:
        return value
    raise ijson.IncompleteJSONError("premature end of the JSON events")


def parse_array(body: BinaryIO, *, source: str, account_id: str) -> Listing:
    """The items of a top-level JSON array, streamed.

    >>> import io
    >>> list(parse_array(io.BytesIO(b'[{"a": 1.10}, 2]'), source="s", account_id="a").records)
    [{'a': Decimal('1.10')}, 2]
    """

    def records() -> Iterator[Any]:
        first, head = _first_byte(body)
        if first != b"[":
            found = "an empty body" if not first else _kind(first)
            raise MalformedResponse(
                f"expected a JSON array at the top level of the response, got {found}",
                source=source,
                account_id=account_id,
            )
        yield from ijson.items(_Replay(head, body), "item", use_float=False, buf_size=BODY_CHUNK)

    return Listing(_guard(records(), source=source, account_id=account_id))


def parse_object_array(
    body: BinaryIO,
    *,
    source: str,
    account_id: str,
    array_key: str,
    extra_keys: Mapping[str, str],
) -> Listing:
    """The items of the array under `array_key` of a top-level object, streamed.

    Scalar top-level members named in `extra_keys` (JSON name → extras name)
    land in `extras`, before or after the array; a missing one is None.

    >>> import io
    >>> listing = parse_object_array(io.BytesIO(b'{"n": [{"x": "1"}], "s": "+1"}'),
    ...     source="s", account_id="a", array_key="n", extra_keys={"s": "shared"})
    >>> list(listing.records), listing.extras
    ([{'x': '1'}], {'shared': '+1'})
    """
    listing = Listing(iter(()))

    def records() -> Iterator[Any]:
        seen_array = False
        events = ijson.parse(body, use_float=False, buf_size=BODY_CHUNK)
        first = next(events, ("", "end", None))
        if first[1] != "start_map":
            raise MalformedResponse(
                "expected a JSON object at the top level of the response, got "
                + _EVENT_KIND.get(first[1], "an empty body"),
                source=source,
                account_id=account_id,
            )
        for prefix, event, value in events:
            if prefix == array_key:
                if event != "start_array":
                    raise MalformedResponse(
                        f'"{array_key}" in the response is not an array but '
                        + _EVENT_KIND.get(event, event),
                        source=source,
                        account_id=account_id,
                    )
                seen_array = True
                for _, ev, val in events:
                    if ev == "end_array":
                        break
                    yield _build(events, ev, val) if ev in _CONTAINER_START else val
            elif prefix in extra_keys and event not in _CONTAINER_END:
                stored = _build(events, event, value) if event in _CONTAINER_START else value
                listing.extras[extra_keys[prefix]] = stored
        if not seen_array:
            raise MalformedResponse(
                f'the response has no "{array_key}" array',
                source=source,
                account_id=account_id,
            )

    for name in extra_keys.values():
        listing.extras.setdefault(name, None)
    listing.records = _guard(records(), source=source, account_id=account_id)
    return listing
