"""The Pingram extractor and parser: the listing, its error bodies, and the parser's edges."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from etl.errors import AuthError, MalformedResponse, ProviderError, RetriableSourceError
from etl.extract._json import Listing
from etl.extract.pingram import PingramExtractor, parse_pingram_listing
from etl.http import build_session
from etl.settings import Settings, load_settings
from etl.simulator import SIM_PINGRAM_API_KEY, Fault, Simulator

FAST = {"backoff_factor": 0.01, "backoff_jitter": 0.0}


def pingram_settings(simulator: Simulator, **env: str) -> Settings:
    """Settings with the simulator's Pingram key (and Sinch, unused here)."""
    return load_settings(**{**simulator.env(), **env})


def fetch_listing(settings: Settings) -> tuple[list[Any], dict[str, Any]]:
    """The records and extras of the configured account, fetched and parsed."""
    extractor = PingramExtractor(settings, build_session(settings, **FAST))
    [account] = extractor.accounts()
    with extractor.open_listing(account) as body:
        listing = parse_pingram_listing(body, account_id=account)
        return list(listing.records), listing.extras


def parse(data: bytes) -> Listing:
    """The listing of a Pingram body given as bytes."""
    return parse_pingram_listing(io.BytesIO(data), account_id="default")


def test_listing_is_fully_parsed_with_shared_number(simulator: Simulator) -> None:
    """All 40 numbers come back, prices exact, and sharedNumber (after the array) in extras."""
    records, extras = fetch_listing(pingram_settings(simulator))
    assert len(records) == 40
    assert all(isinstance(r["phoneNumber"], str) for r in records)
    prices = [r["monthlyPrice"] for r in records if "monthlyPrice" in r]
    assert prices
    assert {type(p) for p in prices} <= {int, Decimal}  # never a binary float
    assert list(extras) == ["shared_number"]
    assert str(extras["shared_number"]).startswith("+")


def test_account_is_pingram_account(simulator: Simulator) -> None:
    """accounts() is the configured PINGRAM_ACCOUNT."""
    settings = pingram_settings(simulator, PINGRAM_ACCOUNT="acme-eu")
    assert PingramExtractor(settings, build_session(settings)).accounts() == ["acme-eu"]


def test_error_body_fields_appear_in_the_message(simulator: Simulator) -> None:
    """A 402 shows Pingram's code, message, fix and trackingId, and carries them."""
    simulator.faults.add("pingram.list", Fault(status=402))
    with pytest.raises(ProviderError) as caught:
        fetch_listing(pingram_settings(simulator))
    error = caught.value
    assert type(error) is ProviderError
    assert (error.status, error.code, error.fix) == (
        402,
        "usage_limit_exceeded",
        "Upgrade your plan or wait until the next billing period.",
    )
    assert str(error) == (
        "pingram/default: HTTP 402 from /numbers/list: usage_limit_exceeded: "
        "Usage limit exceeded for the current billing period; "
        "fix: Upgrade your plan or wait until the next billing period.; "
        f"trackingId: {error.tracking_id}"
    )
    assert str(error.tracking_id).startswith("trk_")
    assert simulator.count("pingram.list") == 1


def test_provider_failure_shows_provider_after_retries(simulator: Simulator) -> None:
    """A 502 that outlives the retries is retriable and names the upstream provider."""
    simulator.faults.add("pingram.list", Fault(status=502), Fault(status=502))
    with pytest.raises(RetriableSourceError) as caught:
        fetch_listing(pingram_settings(simulator, NUMBERS_ETL_HTTP_MAX_ATTEMPTS="2"))
    message = str(caught.value)
    assert message.startswith(
        "pingram/default: HTTP 502 from /numbers/list: provider_error: "
        "The upstream telephony provider returned an error; "
        "fix: Retry later; contact support with the tracking id if it persists.; "
        "provider: telnyx 10009; trackingId: trk_"
    )
    assert message.endswith("(gave up after 2 attempts)")


def test_401_without_body_says_check_the_key(simulator: Simulator) -> None:
    """A bodiless 401 is an AuthError: API key refused (check PINGRAM_API_KEY)."""
    simulator.faults.add("pingram.list", Fault(status=401))
    with pytest.raises(AuthError) as caught:
        fetch_listing(pingram_settings(simulator))
    assert str(caught.value) == (
        "pingram/default: HTTP 401 from /numbers/list: API key refused (check PINGRAM_API_KEY)"
    )


def test_wrong_key_is_auth_error_without_the_key(simulator: Simulator) -> None:
    """A wrong key is an AuthError quoting Pingram's body, never the key itself."""
    wrong_key = "pingram_sk_wrong_0123456789"
    with pytest.raises(AuthError) as caught:
        fetch_listing(pingram_settings(simulator, PINGRAM_API_KEY=wrong_key))
    message = str(caught.value)
    assert message.startswith(
        "pingram/default: HTTP 401 from /numbers/list: unauthorized: Invalid API key; "
        "fix: Use a key from Settings → API keys.; trackingId: trk_"
    )
    assert message.endswith("; check PINGRAM_API_KEY")
    assert wrong_key not in message
    assert SIM_PINGRAM_API_KEY not in message


def test_numbers_object_is_malformed(simulator: Simulator) -> None:
    """numbers as an object instead of an array is a MalformedResponse."""
    simulator.faults.add("pingram.list", Fault(wrong_shape=True))
    with pytest.raises(MalformedResponse) as caught:
        fetch_listing(pingram_settings(simulator))
    assert str(caught.value) == (
        'pingram/default: "numbers" in the response is not an array but an object'
    )


def test_truncated_body_is_malformed(simulator: Simulator) -> None:
    """A connection dropped mid-body is a MalformedResponse naming the source."""
    simulator.faults.add("pingram.list", Fault(truncate=True))
    with pytest.raises(MalformedResponse) as caught:
        fetch_listing(pingram_settings(simulator))
    assert str(caught.value).startswith("pingram/default: the response body was cut short")


def test_shared_number_before_numbers_and_nested_values() -> None:
    """sharedNumber may come first; nested values and odd items are built as they are."""
    listing = parse(
        b'{"sharedNumber": "+15550001111", "meta": {"numbers": 3}, "numbers": ['
        b'{"phoneNumber": "+14155550100", "caps": {"sms": true, "list": [1, 2.50]}}, "x", null'
        b"]}"
    )
    assert list(listing.records) == [
        {"phoneNumber": "+14155550100", "caps": {"sms": True, "list": [1, Decimal("2.50")]}},
        "x",
        None,
    ]
    assert listing.extras == {"shared_number": "+15550001111"}


def test_missing_shared_number_is_none() -> None:
    """A listing without sharedNumber is still complete; shared_number is None."""
    listing = parse(b'{"numbers": []}')
    assert (list(listing.records), listing.extras) == ([], {"shared_number": None})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b'{"sharedNumber": "+1"}',
            'pingram/default: the response has no "numbers" array',
            id="no-numbers",
        ),
        pytest.param(
            b'[{"phoneNumber": "+1"}]',
            "pingram/default: expected a JSON object at the top level of the response, "
            "got an array",
            id="top-level-array",
        ),
        pytest.param(
            b'{"numbers": "+14155550100"}',
            'pingram/default: "numbers" in the response is not an array but a string',
            id="numbers-string",
        ),
        pytest.param(
            b'{"numbers": [{"phoneNumber": "+1"}',
            "pingram/default: the response body ended before its JSON was complete "
            "(truncated?): premature end of the body",
            id="unterminated",
        ),
        pytest.param(
            b'{"numbers": [], "sharedNumber": "+1"} {}',
            "pingram/default: the response body is not valid JSON: "
            "trailing garbage after the JSON value",
            id="trailing-garbage",
        ),
    ],
)
def test_wrong_shapes_are_malformed(body: bytes, expected: str) -> None:
    """Every body not of the documented shape is a MalformedResponse when iterated."""
    listing = parse(body)
    with pytest.raises(MalformedResponse) as caught:
        list(listing.records)
    assert str(caught.value) == expected
