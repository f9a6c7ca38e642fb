"""The pure transform layer: records in, literal `NumberRow`/`Rejection` out (SPEC §5.1-5.2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etl.transform import NumberRow, Rejection
from etl.transform.pingram import normalize_pingram_record
from etl.transform.sinch import normalize_sinch_record

DATA = Path(__file__).parent / "data"
SINCH_ACCOUNT = "8888123"
PINGRAM_ACCOUNT = "default"


def load_json(name: str) -> Any:
    """A file of tests/data parsed as the extractors parse it: non-integers as Decimal."""
    with (DATA / name).open(encoding="utf-8") as file:
        return json.load(file, parse_float=Decimal)


def sinch(record: Any) -> NumberRow | Rejection:
    """Normalize one Sinch record for the test organisation."""
    return normalize_sinch_record(record, account_id=SINCH_ACCOUNT)


def pingram(record: Any) -> NumberRow | Rejection:
    """Normalize one Pingram record for the test account."""
    return normalize_pingram_record(record, account_id=PINGRAM_ACCOUNT)


# --- the seed examples, field by field --------------------------------------------

SINCH_SEED = load_json("sinch_numbers.json")
PINGRAM_V1 = load_json("pingram_v1.json")
PINGRAM_V2 = load_json("pingram_v2.json")
END_OF_2015 = datetime(2015, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_sinch_seed_first_number() -> None:
    """The seed's first number (no application key) becomes this exact row."""
    record = SINCH_SEED[0]
    expected = NumberRow(
        source="sinch",
        account_id="8888123",
        e164="+14150005550",
        raw=record,
        country_code="US",
        country="US",
        city="SAN FRANCISCO",
        area_code="415",
        capabilities=("voice",),
        group_id=13,
        application_key=None,
        label=None,
        number_type=None,
        billing_status=None,
        registered_at=None,
        released_at=None,
        expires_at=END_OF_2015,
        cost_amount=Decimal("0.00"),
        cost_currency="USD",
    )
    assert sinch(record) == expected


def test_sinch_seed_second_number() -> None:
    """The seed's second number carries its application key into the row."""
    record = SINCH_SEED[1]
    expected = NumberRow(
        source="sinch",
        account_id="8888123",
        e164="+14150005551",
        raw=record,
        country_code="US",
        country="US",
        city="SAN FRANCISCO",
        area_code="415",
        capabilities=("voice",),
        group_id=13,
        application_key="bb7b4e39-4227-4913-8c81-2db4abb54fb3",
        expires_at=END_OF_2015,
        cost_amount=Decimal("0.00"),
        cost_currency="USD",
    )
    assert sinch(record) == expected


def test_pingram_old_schema_with_label() -> None:
    """An old-schema Pingram number gets its country from the number itself."""
    record = PINGRAM_V1["numbers"][0]
    expected = NumberRow(
        source="pingram",
        account_id="default",
        e164="+14155550100",
        raw=record,
        country_code="US",
        label="Support line",
        registered_at=datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC),
    )
    assert pingram(record) == expected


def test_pingram_old_schema_without_label() -> None:
    """A number without a label has a NULL label, and a London number is GB."""
    record = PINGRAM_V1["numbers"][1]
    expected = NumberRow(
        source="pingram",
        account_id="default",
        e164="+442071838750",
        raw=record,
        country_code="GB",
        label=None,
        registered_at=datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
    )
    assert pingram(record) == expected


def test_pingram_new_schema_active() -> None:
    """The newer schema gives country, type, status, USD price and next billing date."""
    record = PINGRAM_V2["numbers"][0]
    expected = NumberRow(
        source="pingram",
        account_id="default",
        e164="+14155550100",
        raw=record,
        country_code="US",
        label="Support line",
        number_type="local",
        billing_status="active",
        registered_at=datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC),
        released_at=None,
        expires_at=datetime(2026, 4, 14, tzinfo=UTC),
        cost_amount=Decimal("1.15"),
        cost_currency="USD",
    )
    assert pingram(record) == expected


def test_pingram_new_schema_released() -> None:
    """A released number keeps its release time in UTC and has no next billing date."""
    record = PINGRAM_V2["numbers"][1]
    expected = NumberRow(
        source="pingram",
        account_id="default",
        e164="+18005550199",
        raw=record,
        country_code="US",
        label="Old campaign",
        number_type="toll_free",
        billing_status="released",
        registered_at=datetime(2024, 11, 2, 17, 45, tzinfo=UTC),
        released_at=datetime(2025, 12, 31, 23, 30, tzinfo=UTC),
        expires_at=None,
        cost_amount=Decimal("0.10"),
        cost_currency="USD",
    )
    assert pingram(record) == expected


def test_raw_is_the_record_as_received() -> None:
    """`raw` is the very object that was normalized, not a copy or a re-encoding."""
    record = SINCH_SEED[0]
    row = sinch(record)
    assert isinstance(row, NumberRow)
    assert row.raw is record


# --- field rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param({"number": 14150005550}, "+14150005550", id="integer"),
        pytest.param({"number": "14150005550"}, "+14150005550", id="digit-string"),
        pytest.param({"number": " +14150005550 "}, "+14150005550", id="string-with-plus"),
        pytest.param({"number": 46701234567}, "+46701234567", id="sweden"),
    ],
)
def test_sinch_number_forms(record: dict[str, Any], expected: str) -> None:
    """Sinch's `number` may be an integer or a string of digits."""
    row = sinch(record)
    assert isinstance(row, NumberRow)
    assert row.e164 == expected


@pytest.mark.parametrize(
    ("phone_number", "expected"),
    [
        pytest.param("+14155550100", "+14155550100", id="e164"),
        pytest.param("+1 (415) 555-0100", "+14155550100", id="parentheses-spaces-dash"),
        pytest.param("+44.20.7183.8750", "+442071838750", id="dots"),
        pytest.param(" +46 70-123 45 67 ", "+46701234567", id="padded"),
        pytest.param("+14150005550", "+14150005550", id="possible-but-not-valid"),
    ],
)
def test_pingram_phone_number_forms(phone_number: str, expected: str) -> None:
    """Pingram's `phoneNumber` loses its spaces, dashes, dots and parentheses."""
    row = pingram({"phoneNumber": phone_number, "createdAt": "2025-01-01T00:00:00Z"})
    assert isinstance(row, NumberRow)
    assert row.e164 == expected


def test_capabilities_are_lower_case_distinct_and_sorted() -> None:
    """Capabilities come out lower-case, once each, in alphabetical order."""
    row = sinch({"number": 14150005550, "capabilities": ["VOICE", "sms", "Voice", "MMS", "sms"]})
    assert isinstance(row, NumberRow)
    assert row.capabilities == ("mms", "sms", "voice")


def test_missing_capabilities_are_null_but_empty_ones_are_empty() -> None:
    """An absent capability list is NULL; an empty one stays an empty tuple."""
    absent, empty = (
        sinch({"number": 14150005550}),
        sinch({"number": 14150005550, "capabilities": []}),
    )
    assert isinstance(absent, NumberRow)
    assert isinstance(empty, NumberRow)
    assert (absent.capabilities, empty.capabilities) == (None, ())


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(Decimal("0.10"), id="decimal"),
        pytest.param("0.10", id="string"),
    ],
)
def test_amount_keeps_its_exact_digits(amount: Any) -> None:
    """0.10 stays Decimal("0.10"), trailing zero included, as a JSON number or a string."""
    row = sinch({"number": 14150005550, "cost": {"amount": amount, "currencyId": "usd"}})
    assert isinstance(row, NumberRow)
    assert (str(row.cost_amount), row.cost_currency) == ("0.10", "USD")
    assert isinstance(row.cost_amount, Decimal)


def test_negative_zero_amount_is_zero() -> None:
    """-0.00 is stored as 0.00, since PostgreSQL numeric has no negative zero."""
    row = sinch({"number": 14150005550, "cost": {"amount": Decimal("-0.00")}})
    assert isinstance(row, NumberRow)
    assert str(row.cost_amount) == "0.00"


def test_integer_amount_is_a_decimal() -> None:
    """An integer price becomes an exact Decimal."""
    row = pingram({"phoneNumber": "+14155550100", "createdAt": "2025-01-01", "monthlyPrice": 2})
    assert isinstance(row, NumberRow)
    assert (row.cost_amount, row.cost_currency) == (Decimal(2), "USD")


def test_next_billing_date_is_midnight_utc() -> None:
    """nextBillingDate 2026-02-01 means the rental period ends at 2026-02-01T00:00:00Z."""
    row = pingram(
        {
            "phoneNumber": "+14155550100",
            "createdAt": "2025-01-01T00:00:00Z",
            "nextBillingDate": "2026-02-01",
        }
    )
    assert isinstance(row, NumberRow)
    assert row.expires_at == datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    assert row.expires_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2015-12-31T23:59:59", datetime(2015, 12, 31, 23, 59, 59, tzinfo=UTC), id="no-offset"
        ),
        pytest.param(
            "2015-12-31T23:59:59Z", datetime(2015, 12, 31, 23, 59, 59, tzinfo=UTC), id="z"
        ),
        pytest.param(
            "2016-01-01T01:59:59.25+02:00",
            datetime(2015, 12, 31, 23, 59, 59, 250000, tzinfo=UTC),
            id="offset-and-fraction",
        ),
        pytest.param("2015-12-31", datetime(2015, 12, 31, tzinfo=UTC), id="date-only"),
    ],
)
def test_timestamps_become_utc(text: str, expected: datetime) -> None:
    """ISO 8601 timestamps become aware UTC datetimes; without an offset they are taken as UTC."""
    row = sinch({"number": 14150005550, "expires": text})
    assert isinstance(row, NumberRow)
    assert row.expires_at == expected
    assert row.expires_at.tzinfo is UTC


def test_empty_text_fields_are_null() -> None:
    """Empty or blank optional strings are stored as NULL, and text is trimmed."""
    record = {
        "number": 14150005550,
        "city": "",
        "country": "  ",
        "areaCode": " 415 ",
        "applicationKey": "",
    }
    expected = NumberRow(
        source="sinch",
        account_id="8888123",
        e164="+14150005550",
        raw=record,
        country_code="US",
        area_code="415",
    )
    assert sinch(record) == expected


def test_unknown_fields_are_ignored() -> None:
    """Fields the normalizer does not know about change nothing."""
    plain = {"phoneNumber": "+14155550100", "createdAt": "2025-01-01T00:00:00Z"}
    extra = {**plain, "provider": "telnyx", "capabilities": {"sms": True}, "monthlyPriceEur": "x"}
    plain_row, extra_row = pingram(plain), pingram(extra)
    assert isinstance(plain_row, NumberRow)
    assert isinstance(extra_row, NumberRow)
    assert plain_row.attributes() == extra_row.attributes()


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        pytest.param(14150005550, "US", id="nanp-unassigned-falls-back-to-us"),
        pytest.param(16135550123, "CA", id="canada"),
        pytest.param(12644612345, "AI", id="anguilla"),
        pytest.param(442071838750, "GB", id="united-kingdom"),
        pytest.param(4915112345678, "DE", id="germany"),
        pytest.param(80012345678, None, id="non-geographic"),
    ],
)
def test_country_from_the_number_when_not_given(number: int, expected: str | None) -> None:
    """Without countryId the country is the number's region, else its calling code's main region."""
    row = sinch({"number": number})
    assert isinstance(row, NumberRow)
    assert row.country_code == expected


def test_given_country_wins_over_the_number() -> None:
    """Sinch countryId and Pingram countryCode are taken as given (upper-cased), not derived."""
    row_s = sinch({"number": 14150005550, "countryId": "pr"})
    row_p = pingram({"phoneNumber": "+14155550100", "createdAt": "2025-01-01", "countryCode": "CA"})
    assert isinstance(row_s, NumberRow)
    assert isinstance(row_p, NumberRow)
    assert (row_s.country_code, row_p.country_code) == ("PR", "CA")


def test_group_id_as_digit_string() -> None:
    """A groupId sent as a string of digits is stored as an integer."""
    row = sinch({"number": 14150005550, "groupId": "13"})
    assert isinstance(row, NumberRow)
    assert row.group_id == 13


# --- rejections ----------------------------------------------------------------------

NUMBER = 14150005550


@pytest.mark.parametrize(
    ("record", "reason", "e164"),
    [
        pytest.param([NUMBER], "record: not an object", None, id="list"),
        pytest.param(None, "record: not an object", None, id="null"),
        pytest.param("14150005550", "record: not an object", None, id="string"),
        pytest.param({}, "number: missing", None, id="no-number"),
        pytest.param({"number": None}, "number: missing", None, id="null-number"),
        pytest.param(
            {"number": 999123},
            "number: not a possible phone number: '+999123'",
            "+999123",
            id="unknown-calling-code",
        ),
        pytest.param(
            {"number": 1415},
            "number: not a possible phone number: '+1415'",
            "+1415",
            id="too-short",
        ),
        pytest.param(
            {"number": Decimal("14150005550.0")},
            "number: not an integer or a string of digits: 14150005550.0",
            None,
            id="decimal-number",
        ),
        pytest.param(
            {"number": 14150005550.0},
            "number: not an integer or a string of digits: 14150005550.0",
            None,
            id="float-number",
        ),
        pytest.param(
            {"number": True},
            "number: not an integer or a string of digits: True",
            None,
            id="bool-number",
        ),
        pytest.param(
            {"number": "1-415-000-5550"},
            "number: not an integer or a string of digits: '1-415-000-5550'",
            None,
            id="formatted-string",
        ),
        pytest.param(
            {"number": -5}, "number: not a positive integer: -5", None, id="negative-number"
        ),
        pytest.param(
            {"number": NUMBER, "countryId": "USA"},
            "countryId: not a 2-letter country code: 'USA'",
            "+14150005550",
            id="three-letter-country",
        ),
        pytest.param(
            {"number": NUMBER, "countryId": 1},
            "countryId: not a string: 1",
            "+14150005550",
            id="numeric-country",
        ),
        pytest.param(
            {"number": NUMBER, "city": ["SF"]},
            "city: not a string: ['SF']",
            "+14150005550",
            id="list-city",
        ),
        pytest.param(
            {"number": NUMBER, "city": "SAN\x00FRANCISCO"},
            "city: not storable text (NUL or lone surrogate): 'SAN\\x00FRANCISCO'",
            "+14150005550",
            id="nul-in-city",
        ),
        pytest.param(
            {"number": NUMBER, "capabilities": ["voice", "\ud800"]},
            "capabilities: not storable text (NUL or lone surrogate): '\\ud800'",
            "+14150005550",
            id="lone-surrogate-capability",
        ),
        pytest.param(
            {"number": NUMBER, "areaCode": 415},
            "areaCode: not a string: 415",
            "+14150005550",
            id="numeric-area-code",
        ),
        pytest.param(
            {"number": NUMBER, "capabilities": "voice"},
            "capabilities: not a list: 'voice'",
            "+14150005550",
            id="capabilities-string",
        ),
        pytest.param(
            {"number": NUMBER, "capabilities": ["voice", 1]},
            "capabilities: not a list of strings: ['voice', 1]",
            "+14150005550",
            id="capabilities-mixed",
        ),
        pytest.param(
            {"number": NUMBER, "groupId": Decimal("13.5")},
            "groupId: not an integer: 13.5",
            "+14150005550",
            id="fractional-group",
        ),
        pytest.param(
            {"number": NUMBER, "groupId": 2**63},
            "groupId: out of range: 9223372036854775808",
            "+14150005550",
            id="group-beyond-bigint",
        ),
        pytest.param(
            {"number": NUMBER, "expires": "tomorrow"},
            "expires: not an ISO 8601 timestamp: 'tomorrow'",
            "+14150005550",
            id="expires-words",
        ),
        pytest.param(
            {"number": NUMBER, "expires": 1451606399},
            "expires: not a string: 1451606399",
            "+14150005550",
            id="expires-epoch",
        ),
        pytest.param(
            {"number": NUMBER, "cost": "0.00 USD"},
            "cost: not an object: '0.00 USD'",
            "+14150005550",
            id="cost-string",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": Decimal("-1.00"), "currencyId": "USD"}},
            "cost.amount: negative: -1.00",
            "+14150005550",
            id="negative-amount",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": "-1.00"}},
            "cost.amount: negative: -1.00",
            "+14150005550",
            id="negative-amount-string",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": 0.1}},
            "cost.amount: not an exact decimal (binary float): 0.1",
            "+14150005550",
            id="float-amount",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": True}},
            "cost.amount: not a number: True",
            "+14150005550",
            id="bool-amount",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": "1,00"}},
            "cost.amount: not a number: '1,00'",
            "+14150005550",
            id="comma-amount",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": Decimal("NaN")}},
            "cost.amount: not finite: NaN",
            "+14150005550",
            id="nan-amount",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": "Infinity"}},
            "cost.amount: not a number: 'Infinity'",
            "+14150005550",
            id="infinite-amount-string",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": Decimal("1E+5000")}},
            "cost.amount: out of range: 1E+5000",
            "+14150005550",
            id="absurd-amount",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": Decimal("1.00"), "currencyId": "usd1"}},
            "cost.currencyId: not a 3-letter currency code: 'usd1'",
            "+14150005550",
            id="bad-currency",
        ),
        pytest.param(
            {"number": NUMBER, "cost": {"amount": Decimal("1.00"), "currencyId": "€"}},
            "cost.currencyId: not a 3-letter currency code: '€'",
            "+14150005550",
            id="currency-symbol",
        ),
    ],
)
def test_sinch_rejections(record: Any, reason: str, e164: str | None) -> None:
    """A bad Sinch record is rejected naming the field, keeping the number if it was readable."""
    assert sinch(record) == Rejection("sinch", "8888123", reason, record, e164=e164)


CREATED = "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("record", "reason", "e164"),
    [
        pytest.param(["+14155550100"], "record: not an object", None, id="list"),
        pytest.param({"createdAt": CREATED}, "phoneNumber: missing", None, id="no-number"),
        pytest.param(
            {"phoneNumber": "", "createdAt": CREATED},
            "phoneNumber: missing",
            None,
            id="empty-number",
        ),
        pytest.param(
            {"phoneNumber": 14155550100, "createdAt": CREATED},
            "phoneNumber: not a string: 14155550100",
            None,
            id="integer-number",
        ),
        pytest.param(
            {"phoneNumber": "4155550100", "createdAt": CREATED},
            "phoneNumber: not E.164 (no leading '+'): '4155550100'",
            None,
            id="no-plus",
        ),
        pytest.param(
            {"phoneNumber": "+1 800 FLOWERS", "createdAt": CREATED},
            "phoneNumber: not a phone number: '+1 800 FLOWERS'",
            None,
            id="letters",
        ),
        pytest.param(
            {"phoneNumber": "+999123", "createdAt": CREATED},
            "phoneNumber: not a possible phone number: '+999123'",
            "+999123",
            id="impossible",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100"},
            "createdAt: missing",
            "+14155550100",
            id="no-created-at",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": "yesterday"},
            "createdAt: not an ISO 8601 timestamp: 'yesterday'",
            "+14155550100",
            id="created-at-words",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "label": 7},
            "label: not a string: 7",
            "+14155550100",
            id="numeric-label",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "countryCode": "U1"},
            "countryCode: not a 2-letter country code: 'U1'",
            "+14155550100",
            id="bad-country-code",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "releasedAt": "soon"},
            "releasedAt: not an ISO 8601 timestamp: 'soon'",
            "+14155550100",
            id="bad-released-at",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "nextBillingDate": "2026-02-30"},
            "nextBillingDate: not a YYYY-MM-DD date: '2026-02-30'",
            "+14155550100",
            id="impossible-date",
        ),
        pytest.param(
            {
                "phoneNumber": "+14155550100",
                "createdAt": CREATED,
                "nextBillingDate": "2026-02-01T00:00:00Z",
            },
            "nextBillingDate: not a YYYY-MM-DD date: '2026-02-01T00:00:00Z'",
            "+14155550100",
            id="timestamp-for-date",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "monthlyPrice": -1},
            "monthlyPrice: negative: -1",
            "+14155550100",
            id="negative-price",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "monthlyPrice": 1.15},
            "monthlyPrice: not an exact decimal (binary float): 1.15",
            "+14155550100",
            id="float-price",
        ),
        pytest.param(
            {"phoneNumber": "+14155550100", "createdAt": CREATED, "billingStatus": False},
            "billingStatus: not a string: False",
            "+14155550100",
            id="bool-billing-status",
        ),
    ],
)
def test_pingram_rejections(record: Any, reason: str, e164: str | None) -> None:
    """A bad Pingram record is rejected naming the field, keeping the number if it was readable."""
    assert pingram(record) == Rejection("pingram", "default", reason, record, e164=e164)


def test_long_bad_values_are_cut_short_in_the_reason() -> None:
    """A huge bad value is quoted only in part, so reasons stay one readable line."""
    record = {"number": NUMBER, "expires": "x" * 10_000}
    rejection = sinch(record)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "expires: not an ISO 8601 timestamp: '" + "x" * 56 + "..."


@pytest.mark.parametrize(
    ("normalize", "record"),
    [
        pytest.param(normalize_sinch_record, {"number": 999123}, id="sinch"),
        pytest.param(
            normalize_pingram_record,
            {"phoneNumber": "+999 123", "createdAt": "2026-01-01T00:00:00Z"},
            id="pingram",
        ),
    ],
)
def test_an_impossible_number_is_rejected_but_still_named(normalize: Any, record: Any) -> None:
    """The rejection of a well-formed but impossible number carries its e164 (never removed)."""
    rejection = normalize(record, account_id="a")
    assert isinstance(rejection, Rejection)
    assert rejection.reason.endswith("not a possible phone number: '+999123'")
    assert rejection.e164 == "+999123"
