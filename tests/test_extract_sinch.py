"""The Sinch extractor and parser: the listing over real HTTP, and the streaming parser's edges."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from etl.errors import AuthError, MalformedResponse
from etl.extract.sinch import SinchExtractor, parse_sinch_listing
from etl.http import build_session
from etl.settings import Settings, load_settings
from etl.simulator import Fault, Simulator

FAST = {"backoff_factor": 0.01, "backoff_jitter": 0.0}
NUMBER_FIELDS = {
    "number",
    "groupId",
    "capabilities",
    "applicationKey",
    "countryId",
    "city",
    "country",
    "areaCode",
    "expires",
    "cost",
}
SEED_RECORD = (
    b'{"number":14150005550,"groupId":13,"capabilities":["voice"],"countryId":"US",'
    b'"city":"SAN FRANCISCO","country":"US","areaCode":"415",'
    b'"expires":"2015-12-31T23:59:59+00:00","cost":{"amount":0.00,"currencyId":"USD"}}'
)


def fixed_settings(simulator: Simulator, **env: str) -> Settings:
    """Settings with the simulator's fixed instance credentials and organisation."""
    return load_settings(**{**simulator.env(), **env})


def fetch_records(settings: Settings) -> list[Any]:
    """Every record of every organisation, fetched and parsed like the pipeline does."""
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    records: list[Any] = []
    for account in extractor.accounts():
        with extractor.open_listing(account) as body:
            records.extend(parse_sinch_listing(body, account_id=account).records)
    return records


def parse(data: bytes) -> list[Any]:
    """The records of a Sinch body given as bytes."""
    return list(parse_sinch_listing(io.BytesIO(data), account_id="8888123").records)


def test_fixed_credential_listing_is_fully_parsed(simulator: Simulator) -> None:
    """All 40 numbers come back as documented Number objects with exact Decimal amounts."""
    records = fetch_records(fixed_settings(simulator))
    assert len(records) == 40
    assert len({r["number"] for r in records}) == 40
    assert all(set(r) <= NUMBER_FIELDS and isinstance(r["number"], int) for r in records)
    assert all(type(r["cost"]["amount"]) is Decimal for r in records)


def test_seed_example_parses_with_exact_decimals() -> None:
    """The seed page's example Number parses to the literal dict, the amount a Decimal."""
    assert parse(b"[" + SEED_RECORD + b"]") == [
        {
            "number": 14150005550,
            "groupId": 13,
            "capabilities": ["voice"],
            "countryId": "US",
            "city": "SAN FRANCISCO",
            "country": "US",
            "areaCode": "415",
            "expires": "2015-12-31T23:59:59+00:00",
            "cost": {"amount": Decimal("0.00"), "currencyId": "USD"},
        }
    ]


def test_empty_listing_is_empty(simulator: Simulator) -> None:
    """An empty array is a valid listing of no numbers."""
    simulator.faults.add("sinch.numbers", Fault(empty_listing=True))
    assert fetch_records(fixed_settings(simulator)) == []


def test_truncated_body_raises_while_iterating(simulator: Simulator) -> None:
    """A connection dropped mid-body opens fine and fails the iteration as MalformedResponse."""
    simulator.faults.add("sinch.numbers", Fault(truncate=True))
    settings = fixed_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    seen: list[Any] = []
    with extractor.open_listing("8888123") as body:
        listing = parse_sinch_listing(body, account_id="8888123")
        with pytest.raises(MalformedResponse) as caught:
            seen.extend(listing.records)
    assert len(seen) < 40  # the 40 records fit in one 64 KiB read, so here none come out
    assert str(caught.value).startswith("sinch/8888123: the response body was cut short")
    assert (caught.value.source, caught.value.account_id) == ("sinch", "8888123")


def test_malformed_body_is_malformed_response(simulator: Simulator) -> None:
    """Non-JSON text mid-body is a MalformedResponse."""
    simulator.faults.add("sinch.numbers", Fault(malformed=True))
    with pytest.raises(MalformedResponse) as caught:
        fetch_records(fixed_settings(simulator))
    assert str(caught.value) == (
        "sinch/8888123: the response body is not valid JSON: unexpected character at character 4654"
    )


def test_object_instead_of_array_is_malformed(simulator: Simulator) -> None:
    """A listing wrapped in an object is refused, not read as empty."""
    simulator.faults.add("sinch.numbers", Fault(wrong_shape=True))
    with pytest.raises(MalformedResponse) as caught:
        fetch_records(fixed_settings(simulator))
    assert str(caught.value) == (
        "sinch/8888123: expected a JSON array at the top level of the response, got an object"
    )


def test_foreign_organisation_is_auth_error_with_hint(simulator: Simulator) -> None:
    """errorCode 40300 (not the owner) is an AuthError pointing at SINCH_ORGANISATION_ID."""
    with pytest.raises(AuthError) as caught:
        fetch_records(fixed_settings(simulator, SINCH_ORGANISATION_ID="1234"))
    assert str(caught.value) == (
        "sinch/1234: HTTP 403 from /v1/organisations/id/1234/numbers: Sinch error 40300: "
        "The current user is not the owner of the organisation: 1234 "
        "(the instance's user does not own this organisation (check SINCH_ORGANISATION_ID))"
    )
    assert simulator.count("sinch.numbers") == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b"",
            "sinch/8888123: expected a JSON array at the top level of the response, "
            "got an empty body",
            id="empty-body",
        ),
        pytest.param(
            b'  "x"',
            "sinch/8888123: expected a JSON array at the top level of the response, got a string",
            id="string",
        ),
        pytest.param(
            b"[1, 2",
            "sinch/8888123: the response body ended before its JSON was complete (truncated?): "
            "premature end of the body",
            id="unterminated",
        ),
        pytest.param(
            b"[1] [2]",
            "sinch/8888123: the response body is not valid JSON: "
            "trailing garbage after the JSON value",
            id="trailing-garbage",
        ),
        pytest.param(
            b'["\xff secret-looking text"]',
            "sinch/8888123: the response body is not valid JSON: invalid UTF-8 near character 0",
            id="bad-utf8-no-excerpt",
        ),
    ],
)
def test_invalid_bodies_are_malformed(body: bytes, expected: str) -> None:
    """Every invalid body is a MalformedResponse whose message quotes no body text."""
    with pytest.raises(MalformedResponse) as caught:
        parse(body)
    assert str(caught.value) == expected


def test_leading_whitespace_and_non_object_items_pass_through() -> None:
    """Whitespace before the array is fine; odd items are left for the normalizer to reject."""
    assert parse(b' \n\t[1, "x", null, {"number": 1.5}]') == [
        1,
        "x",
        None,
        {"number": Decimal("1.5")},
    ]


class _RecordStream(io.RawIOBase):
    """A body of `count` seed records, produced on the fly (never held whole)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self._chunks = self._generate(count)
        self._pending = b""

    @staticmethod
    def _generate(count: int) -> Iterator[bytes]:
        """The body in chunks of 500 records."""
        yield b"["
        batch = b",".join([SEED_RECORD] * 500)
        for i in range(count // 500):
            yield (b"," if i else b"") + batch
        yield b"]"

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the next generated bytes; 0 at the end."""
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def test_memory_stays_flat_while_streaming() -> None:
    """Streaming 10,000 records peaks far below what a list of them would take."""
    tracemalloc.start()
    try:
        listing = parse_sinch_listing(io.BufferedReader(_RecordStream(10_000)), account_id="a")
        count = sum(1 for _ in listing.records)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 2_000_000  # a list of these 10,000 dicts alone takes over 10 MB
