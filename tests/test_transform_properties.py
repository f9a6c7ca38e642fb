"""Properties of the transform layer, checked on generated input (hypothesis)."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.transform import NumberRow, Rejection
from etl.transform.fields import (
    FieldError,
    country_for_e164,
    country_for_e164_reference,
    parse_utc,
    possible_e164,
    possible_e164_reference,
)
from etl.transform.pingram import normalize_pingram_record
from etl.transform.sinch import normalize_sinch_record

E164 = re.compile(r"^\+[1-9]\d+$")
DATA = Path(__file__).parent / "data"
Normalize = Callable[..., NumberRow | Rejection]
NORMALIZERS = [
    pytest.param(normalize_sinch_record, "sinch", id="sinch"),
    pytest.param(normalize_pingram_record, "pingram", id="pingram"),
]


# The machine may be slow and the first call per calling code parses for real.
def relaxed(max_examples: int = 100) -> settings:
    """Hypothesis settings without a deadline, for a slow machine and first-call parsing."""
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


def example_numbers() -> list[str]:
    """libphonenumber's example numbers of every region and type, and non-geographic ones."""
    types = [
        getattr(phonenumbers.PhoneNumberType, name) for name in dir(phonenumbers.PhoneNumberType)
    ]
    numbers = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for number_type in types:
            if isinstance(number_type, int):
                example = phonenumbers.example_number_for_type(region, number_type)
                if example is not None:
                    numbers.add(
                        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                    )
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            numbers.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(numbers)


EXAMPLES = example_numbers()
CALLING_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
DIGITS = "0123456789"


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """An example number's digits with its tail replaced, shortened or lengthened."""
    digits = draw(st.sampled_from(EXAMPLES))[1:]
    keep = draw(st.integers(min_value=1, max_value=len(digits)))
    tail = draw(st.text(DIGITS, max_size=len(digits) - keep + 3))
    return digits[:keep] + tail


number_digits = st.one_of(
    mutated_examples(),
    st.builds(
        lambda code, national: f"{code}{national}",
        st.sampled_from(CALLING_CODES),
        st.text(DIGITS, max_size=18),
    ),
    st.text(DIGITS, min_size=1, max_size=24),
)


# --- the fast phone-number path is libphonenumber ---------------------------------------


@relaxed(1000)
@given(number_digits)
def test_possible_e164_agrees_with_libphonenumber(digits: str) -> None:
    """The cached possible-number check gives phonenumbers.parse + is_possible_number's verdict."""
    assert possible_e164(digits) == possible_e164_reference(digits)


@relaxed(1000)
@given(number_digits)
def test_country_for_e164_agrees_with_libphonenumber(digits: str) -> None:
    """For a possible number, the shortcut country is parse + region_code_for_number's."""
    if possible_e164_reference(digits):
        assert country_for_e164("+" + digits) == country_for_e164_reference("+" + digits)


def test_example_numbers_agree_with_libphonenumber() -> None:
    """Every example number of every region and type gets libphonenumber's verdict and country."""
    disagreements = [
        e164
        for e164 in EXAMPLES
        if possible_e164(e164[1:]) != possible_e164_reference(e164[1:])
        or country_for_e164(e164) != country_for_e164_reference(e164)
    ]
    assert disagreements == []


def test_every_calling_code_and_length_agrees_with_libphonenumber() -> None:
    """Every calling code, national length 0-17 and leading digit agrees with libphonenumber."""
    rng = random.Random(20261122)
    disagreements = []
    for code in CALLING_CODES:
        for length in range(18):
            for lead in ["0", "1", "8", "9", rng.choice(DIGITS)]:
                national = (lead + "".join(rng.choices(DIGITS, k=length)))[:length]
                digits = f"{code}{national}"
                possible = possible_e164_reference(digits)
                if possible_e164(digits) != possible:
                    disagreements.append(("possible", digits))
                elif possible and country_for_e164("+" + digits) != country_for_e164_reference(
                    "+" + digits
                ):
                    disagreements.append(("country", digits))
    assert disagreements == []


# --- normalizers never raise ----------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(),
    st.floats(),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Good values three times in four, so generated records get past their first field."""
    return st.integers(0, 3).flatmap(lambda draw: bad if draw == 0 else good)


moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
# ISO 8601 and RFC 3339 offsets are whole minutes; Python also writes offsets with
# seconds ("+00:00:00.000001"), which parse_utc refuses.
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timedelta(minutes=minutes)
)
offsets_with_seconds = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).filter(lambda offset: offset % timedelta(minutes=1) != timedelta(0))
good_timestamps = st.one_of(
    moments.map(datetime.isoformat),
    st.builds(lambda moment, offset: moment.replace(tzinfo=timezone(offset)), moments, offsets).map(
        datetime.isoformat
    ),
    st.sampled_from(["2015-12-31T23:59:59+00:00", "2026-02-01T00:00:00Z", "2026-02-01"]),
)
timestamps = mostly(
    good_timestamps,
    st.one_of(st.sampled_from(["0001-01-01T00:00:00+01:00", "tomorrow"]), json_values),
)
good_amounts = st.decimals(min_value=0, allow_nan=False, allow_infinity=False)
amounts = mostly(
    st.one_of(good_amounts, good_amounts.map(str), st.integers(min_value=0)),
    st.one_of(st.decimals(), st.integers(), st.floats(), json_values),
)
texts = mostly(
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.text(st.characters(categories=["Cs", "Cc"]), max_size=5), json_values),
)
codes = mostly(
    st.sampled_from(["US", "se", " gb ", "PR"]),
    st.one_of(st.sampled_from(["USA", "", "U1"]), texts),
)
good_numbers = st.sampled_from(EXAMPLES)

sinch_records = st.fixed_dictionaries(
    {
        "number": mostly(
            st.one_of(good_numbers.map(lambda e164: int(e164[1:])), good_numbers.map(str)),
            st.one_of(number_digits.map(int), number_digits, st.integers(), json_values),
        )
    },
    optional={
        "groupId": mostly(st.integers(0, 2**40), st.one_of(st.text(DIGITS), json_values)),
        "capabilities": mostly(
            st.lists(st.sampled_from(["voice", "SMS", "sms", " Mms ", ""])), json_values
        ),
        "applicationKey": texts,
        "countryId": codes,
        "city": texts,
        "country": texts,
        "areaCode": texts,
        "expires": timestamps,
        "cost": mostly(
            st.fixed_dictionaries(
                {}, optional={"amount": amounts, "currencyId": mostly(st.just("usd"), codes)}
            ),
            json_values,
        ),
        "unknown": json_values,
    },
)
pingram_records = st.fixed_dictionaries(
    {
        "phoneNumber": mostly(
            good_numbers, st.one_of(number_digits.map(lambda digits: "+" + digits), texts)
        ),
        "createdAt": timestamps,
    },
    optional={
        "label": texts,
        "countryCode": codes,
        "numberType": texts,
        "billingStatus": mostly(st.sampled_from(["active", "released"]), texts),
        "nextBillingDate": mostly(st.dates().map(str), timestamps),
        "monthlyPrice": amounts,
        "releasedAt": timestamps,
        "unknown": json_values,
    },
)


def check_result(result: Any, record: Any, source: str) -> None:
    """What holds of every normalizer result: its type, the key, and the shape of every field."""
    assert isinstance(result, NumberRow | Rejection)
    assert (result.source, result.account_id) == (source, "acct")
    if isinstance(result, Rejection):
        assert result.record is record
        assert re.match(r"^[A-Za-z.]+: ", result.reason)
        assert result.e164 is None or E164.match(result.e164)
        return
    assert result.raw is record
    assert E164.match(result.e164)
    assert result.country_code is None or re.fullmatch(r"[A-Z]{2}", result.country_code)
    assert result.cost_currency is None or re.fullmatch(r"[A-Z]{3}", result.cost_currency)
    if result.capabilities is not None:
        assert list(result.capabilities) == sorted(set(result.capabilities))
        assert all(name == name.lower() for name in result.capabilities)
    if result.cost_amount is not None:
        assert isinstance(result.cost_amount, Decimal)
        assert result.cost_amount.is_finite()
        assert not result.cost_amount.is_signed()
    for text in (
        result.country,
        result.city,
        result.area_code,
        result.label,
        *(result.capabilities or ()),
    ):
        assert text is None or (text and "\x00" not in text and text.encode())
    for moment in (result.registered_at, result.released_at, result.expires_at):
        assert moment is None or moment.tzinfo is UTC


@relaxed(200)
@pytest.mark.parametrize(("normalize", "source"), NORMALIZERS)
@given(record=json_values)
def test_normalize_never_raises_on_any_json(normalize: Normalize, source: str, record: Any) -> None:
    """Any JSON value at all gives a NumberRow or a Rejection, never an exception."""
    check_result(normalize(record, account_id="acct"), record, source)


@relaxed(300)
@given(record=sinch_records)
def test_normalize_sinch_never_raises_on_record_like_input(record: dict[str, Any]) -> None:
    """Sinch-shaped records with good and bad fields mixed give a well-formed row or rejection."""
    check_result(normalize_sinch_record(record, account_id="acct"), record, "sinch")


@relaxed(300)
@given(record=pingram_records)
def test_normalize_pingram_never_raises_on_record_like_input(record: dict[str, Any]) -> None:
    """Pingram-shaped records with good and bad fields mixed give a well-formed row or rejection."""
    check_result(normalize_pingram_record(record, account_id="acct"), record, "pingram")


def mutate(value: Any, rng: random.Random) -> Any:
    """A value with one field somewhere replaced, removed, or added."""
    replacements: list[Any] = [
        None,
        "",
        "x",
        -1,
        0,
        1.5,
        Decimal("-0.5"),
        True,
        [],
        {},
        "+1",
        2**70,
    ]
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        action = rng.random()
        if action < 0.2:
            del value[key]
        elif action < 0.6:
            value[key] = mutate(value[key], rng)
        else:
            value[key] = rng.choice(replacements)
        return value
    if isinstance(value, list) and value and rng.random() < 0.5:
        value[rng.randrange(len(value))] = rng.choice(replacements)
        return value
    return rng.choice(replacements)


def test_ten_thousand_mutated_seed_records() -> None:
    """Ten thousand seed records, each with a field broken, all normalize without raising."""
    rng = random.Random(5)
    sinch_seed = json.loads((DATA / "sinch_numbers.json").read_text(), parse_float=Decimal)
    pingram_seed = json.loads((DATA / "pingram_v2.json").read_text(), parse_float=Decimal)[
        "numbers"
    ]
    for _ in range(5000):
        record = mutate(copy.deepcopy(rng.choice(sinch_seed)), rng)
        check_result(normalize_sinch_record(record, account_id="acct"), record, "sinch")
        record = mutate(copy.deepcopy(rng.choice(pingram_seed)), rng)
        check_result(normalize_pingram_record(record, account_id="acct"), record, "pingram")


# --- values survive exactly ------------------------------------------------------------------

exact_amounts = st.decimals(
    min_value=0, max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False
) | st.decimals(min_value=0, max_value=1, places=20)


@relaxed()
@given(amount=exact_amounts, as_text=st.booleans())
def test_decimal_amounts_survive_exactly(amount: Decimal, as_text: bool) -> None:
    """A non-negative Decimal (or its text) comes out with the very same digits and exponent."""
    expected = amount.copy_abs()  # -0 is 0
    sent = str(amount) if as_text else amount
    row_s = normalize_sinch_record(
        {"number": 14155550100, "cost": {"amount": sent, "currencyId": "EUR"}}, account_id="a"
    )
    row_p = normalize_pingram_record(
        {"phoneNumber": "+14155550100", "createdAt": "2025-01-01", "monthlyPrice": sent},
        account_id="a",
    )
    assert isinstance(row_s, NumberRow)
    assert isinstance(row_p, NumberRow)
    assert row_s.cost_amount is not None
    assert row_p.cost_amount is not None
    assert row_s.cost_amount.as_tuple() == expected.as_tuple()
    assert row_p.cost_amount.as_tuple() == expected.as_tuple()


@st.composite
def formatted_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A possible number written with random spaces, dashes, dots and parentheses, and its E.164."""
    e164 = draw(st.sampled_from(EXAMPLES))
    written = "+"
    for digit in e164[1:]:
        written += draw(st.sampled_from(["", "", " ", "-", ".", "(", ")"])) + digit
    return written, e164


@relaxed()
@given(formatted_numbers())
def test_formatting_is_removed_from_pingram_numbers(case: tuple[str, str]) -> None:
    """However a possible number is punctuated, Pingram's phoneNumber becomes its plain E.164."""
    written, e164 = case
    row = normalize_pingram_record(
        {"phoneNumber": written, "createdAt": "2025-01-01"}, account_id="a"
    )
    assert isinstance(row, NumberRow)
    assert row.e164 == e164


@given(moment=moments, offset=offsets)
def test_timestamps_with_offsets_are_the_same_instant_in_utc(
    moment: datetime, offset: timedelta
) -> None:
    """An ISO 8601 timestamp with any offset becomes the same instant, in UTC."""
    aware = moment.replace(tzinfo=timezone(offset))
    parsed = parse_utc(aware.isoformat())
    assert parsed == aware
    assert parsed.tzinfo is UTC


@given(moment=moments, offset=offsets_with_seconds)
def test_timestamps_with_offsets_of_seconds_are_refused(
    moment: datetime, offset: timedelta
) -> None:
    """An offset with seconds (not ISO 8601) is refused, not read without its fraction."""
    with pytest.raises(FieldError, match="not an ISO 8601 timestamp"):
        parse_utc(moment.replace(tzinfo=timezone(offset)).isoformat())


@given(moment=moments)
def test_timestamps_without_offset_are_utc(moment: datetime) -> None:
    """An ISO 8601 timestamp without an offset is read as UTC wall time."""
    assert parse_utc(moment.isoformat()) == moment.replace(tzinfo=UTC)
