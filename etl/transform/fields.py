"""Pure field parsers shared by the normalizers.

Each takes one value as the JSON decoder gives it (``parse_float=Decimal``: integers are
``int``, other numbers ``Decimal``) and returns it normalized, or raises
`FieldError` saying why; the normalizer prefixes the field's name to make the
rejection reason ("cost.amount: negative: -1.00").

Phone numbers must be libphonenumber-*possible* (never "valid"). Parsing each
one with ``phonenumbers.parse`` was most of a sync's transform time, so
`possible_e164` and `country_for_e164` take shortcuts with the same answers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumber
from phonenumbers.phonemetadata import PhoneMetadata

# Keep libphonenumber's compiled metadata patterns (its public switch; they are a
# fixed set) instead of recompiling per use: regions of +1 numbers come 25% faster.
phonenumbers.enable_pattern_cache()


class FieldError(ValueError):
    """A value that cannot be normalized; the message says why, without the field name.

    `e164` is set when the value was a well-formed ``+digits`` number that is
    not possible: the rejection still names the number, so that a number
    present in a listing is never marked removed (SPEC §5.5) because, say, a
    libphonenumber update stopped finding it possible.
    """

    def __init__(self, message: str, *, e164: str | None = None) -> None:
        super().__init__(message)
        self.e164 = e164


def show(value: Any) -> str:
    """How a bad value is quoted in a rejection reason: JSON-like, and short.

    >>> show("usd1"), show(Decimal("-1.00")), show(True), len(show("x" * 100))
    ("'usd1'", '-1.00', 'True', 60)
    """
    if isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, int) and value.bit_length() > 256:
        text = f"<integer of {value.bit_length()} bits>"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- phone numbers ------------------------------------------------------------
_SEPARATORS = str.maketrans("", "", "-.()")


def to_e164(value: Any) -> str:
    """A phone number written in international format, as ``+`` and digits.

    Spaces, dashes, dots and parentheses are removed; the number must start
    with ``+`` and be a possible number.

    >>> to_e164("+1 (415) 000-5550")
    '+14150005550'
    >>> to_e164("4150005550")
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not E.164 (no leading '+'): '4150005550'
    """
    if not isinstance(value, str):
        raise FieldError(f"not a string: {show(value)}")
    digits = value[1:]
    if not (value[:1] == "+" and digits.isdigit() and digits.isascii()):
        compact = "".join(value.split()).translate(_SEPARATORS)
        if not compact:
            raise FieldError("missing")
        if compact[0] != "+":
            raise FieldError(f"not E.164 (no leading '+'): {show(value)}")
        digits = compact[1:]
        if not (digits.isdigit() and digits.isascii()):
            raise FieldError(f"not a phone number: {show(value)}")
    return e164_from_digits(digits)


def e164_from_digits(digits: str) -> str:
    """``+`` and the digits, once they are known to form a possible number."""
    e164 = "+" + digits
    if not possible_e164(digits):
        well_formed = 2 <= len(digits) <= _MAX_FAST_DIGITS and digits[0] != "0"
        named = e164 if well_formed else None
        raise FieldError(f"not a possible phone number: {show(e164)}", e164=named)
    return e164


def possible_e164_reference(digits: str) -> bool:
    """libphonenumber's own verdict on ``+digits``: parse, then `is_possible_number`."""
    try:
        number = phonenumbers.parse("+" + digits)
    except NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def possible_e164(digits: str) -> bool:
    """Whether ``+digits`` is a possible number: the reference's verdict, mostly cached.

    libphonenumber reads the calling code (the first known code among the first
    1-3 digits), strips a national prefix only where the code's pattern matches
    the rest, then decides by code and national length alone. So unless that
    pattern matches (rare), the verdict is cached per (code, length), computed
    by the reference the first time. tests/test_transform_properties.py checks.

    >>> possible_e164("14150005550"), possible_e164("999123")
    (True, False)
    """
    if 3 <= len(digits) <= _MAX_FAST_DIGITS:
        lead = _LEADS.get(digits[:3]) or _lead_for(digits[:3])
        if lead is _NO_LEAD:
            return False
        national = digits[lead.code_length :]
        if _keeps_national(lead, national):
            verdict = lead.verdicts[len(national)]
            if verdict is None:
                verdict = lead.verdicts[len(national)] = possible_e164_reference(digits)
            return verdict
    return possible_e164_reference(digits)


_MAX_FAST_DIGITS = 20  # 3-digit calling code + libphonenumber's 17-digit national maximum


class _Lead(NamedTuple):
    """What a number's first three digits decide (see `possible_e164`)."""

    calling_code: int
    code_length: int
    regions: tuple[str, ...]
    national_prefix: re.Pattern[str] | None  # parse may strip a prefix only where this matches
    verdicts: list[bool | None]  # possible or not, by national length; shared by a code's leads


def _keeps_national(lead: _Lead, national: str) -> bool:
    """Whether ``phonenumbers.parse`` surely keeps the national number as it is: the
    prefix pattern does not match, or matches empty capturing nothing (Argentina's).
    """
    if lead.national_prefix is None:
        return True
    match = lead.national_prefix.match(national)
    return match is None or (match.end() == 0 and match.lastindex is None)


_VERDICTS: dict[int, list[bool | None]] = {}
_NO_LEAD = _Lead(0, 0, (), None, [])  # no calling code starts these digits
_LEADS: dict[str, _Lead] = {}


def _lead_for(first_three: str) -> _Lead:
    """The calling code that libphonenumber would read from these leading digits."""
    lead = _NO_LEAD
    for length in (1, 2, 3):
        prefix = first_three[:length]
        code = int(prefix) if len(prefix) == length and prefix[0] != "0" else 0
        if code in COUNTRY_CODE_TO_REGION_CODE:
            region = phonenumbers.region_code_for_country_code(code)
            metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            pattern = metadata.national_prefix_for_parsing if metadata is not None else None
            national_prefix = re.compile(pattern) if pattern else None
            verdicts = _VERDICTS.setdefault(code, [None] * (_MAX_FAST_DIGITS + 1))
            lead = _Lead(code, length, COUNTRY_CODE_TO_REGION_CODE[code], national_prefix, verdicts)
            break
    _LEADS[first_three] = lead
    return lead


def _country_of_region(region: str | None, calling_code: int) -> str | None:
    if region is None or region in ("001", "ZZ"):  # unknown, or non-geographic
        region = phonenumbers.region_code_for_country_code(calling_code)
    return None if region in ("001", "ZZ") else region


def country_for_e164_reference(e164: str) -> str | None:
    """The country of a number by libphonenumber alone (see `country_for_e164`)."""
    try:
        number = phonenumbers.parse(e164)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return _country_of_region(region, number.country_code or 0)


def country_for_e164(e164: str) -> str | None:
    """The ISO 3166 country of a possible number, as libphonenumber sees it.

    The number's own region when libphonenumber knows it, else the main region
    of its calling code (``+1`` → ``US``); None for non-geographic numbers.
    Same answer as `country_for_e164_reference` for every possible number, but
    a calling code used by one region only is answered without parsing.

    >>> country_for_e164("+442071838750"), country_for_e164("+14150005550")
    ('GB', 'US')
    >>> country_for_e164("+12642920000"), country_for_e164("+80012345678") is None
    ('AI', True)
    """
    digits = e164[1:]
    lead = _LEADS.get(digits[:3]) or _lead_for(digits[:3])
    if lead is _NO_LEAD:
        return None
    if len(lead.regions) == 1:
        return _country_of_region(lead.regions[0], lead.calling_code)
    national = digits[lead.code_length :]
    if len(national) >= 2 and len(digits) <= _MAX_FAST_DIGITS and _keeps_national(lead, national):
        region = phonenumbers.region_code_for_number(_phone_number(lead.calling_code, national))
        return _country_of_region(region, lead.calling_code)
    return country_for_e164_reference(e164)


def _phone_number(calling_code: int, national: str) -> PhoneNumber:
    """The `PhoneNumber` that ``phonenumbers.parse`` builds when nothing is stripped."""
    zeros = min(len(national) - len(national.lstrip("0")), len(national) - 1)
    return PhoneNumber(
        country_code=calling_code,
        national_number=int(national),
        italian_leading_zero=True if zeros else None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )


# --- text, codes, lists ---------------------------------------------------------


def parse_text(value: Any) -> str | None:
    """Optional free text: stripped, None when absent or empty, and storable.

    >>> parse_text(" SAN FRANCISCO "), parse_text(""), parse_text(None)
    ('SAN FRANCISCO', None, None)
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(f"not a string: {show(value)}")
    return _storable(value.strip()) or None


def _storable(text: str) -> str:
    """The text, if PostgreSQL can store it: no NUL, no lone surrogate (from a JSON escape)."""
    if "\x00" in text or not (text.isascii() or _SURROGATE.search(text) is None):
        raise FieldError(f"not storable text (NUL or lone surrogate): {show(text)}")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_country(value: Any) -> str:
    """An ISO 3166-1 alpha-2 code: two letters, upper-cased.

    >>> parse_country("US"), parse_country(" se ")
    ('US', 'SE')
    >>> parse_country("USA")
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not a 2-letter country code: 'USA'
    """
    return _parse_letter_code(value, 2, "country", _COUNTRIES)


def parse_currency(value: Any) -> str:
    """An ISO 4217 currency code: three letters, upper-cased.

    >>> parse_currency("USD"), parse_currency(" eur ")
    ('USD', 'EUR')
    >>> parse_currency("usd1")
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not a 3-letter currency code: 'usd1'
    """
    return _parse_letter_code(value, 3, "currency", _CURRENCIES)


def _parse_letter_code(value: Any, length: int, what: str, memo: dict[str, str]) -> str:
    code = memo.get(value) if type(value) is str else None
    if code is None:
        if not isinstance(value, str):
            raise FieldError(f"not a string: {show(value)}")
        code = value.strip().upper()
        if len(code) != length or not (code.isalpha() and code.isascii()):
            raise FieldError(f"not a {length}-letter {what} code: {show(value)}")
        if len(memo) < _MEMO_SIZE:
            memo[value] = code
    return code


_MEMO_SIZE = 4096  # listings repeat a few codes and capability lists: remember them
_COUNTRIES: dict[str, str] = {}
_CURRENCIES: dict[str, str] = {}
_CAPABILITIES: dict[tuple[str, ...], tuple[str, ...]] = {}


def normalize_capabilities(value: Any) -> tuple[str, ...]:
    """Capabilities as a sorted tuple of distinct lower-case names.

    >>> normalize_capabilities(["SMS", "voice", "sms", " Voice "])
    ('sms', 'voice')
    >>> normalize_capabilities([])
    ()
    """
    if type(value) is list:
        try:
            answer = _CAPABILITIES.get(tuple(value))
        except TypeError:  # an unhashable item: the checks below reject it
            answer = None
        if answer is not None:
            return answer
    if not isinstance(value, list):
        raise FieldError(f"not a list: {show(value)}")
    names = set()
    for item in value:
        if not isinstance(item, str):
            raise FieldError(f"not a list of strings: {show(value)}")
        name = _storable(item.strip().lower())
        if name:
            names.add(name)
    answer = tuple(sorted(names))
    if len(_CAPABILITIES) < _MEMO_SIZE:
        _CAPABILITIES[tuple(value)] = answer
    return answer


# --- money ----------------------------------------------------------------------

_DECIMAL_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
# No price needs a thousand digits; the bound keeps absurd values out of the table.
_MAX_DIGITS = 1000


def parse_money(value: Any) -> Decimal:
    """A non-negative amount as an exact Decimal, never through a binary float.

    >>> parse_money(Decimal("0.10")), parse_money("0.10"), parse_money(3)
    (Decimal('0.10'), Decimal('0.10'), Decimal('3'))
    >>> parse_money(0.1)
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not an exact decimal (binary float): 0.1
    >>> parse_money(Decimal("-1.00"))
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: negative: -1.00
    """
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool):
        raise FieldError(f"not a number: {show(value)}")
    elif isinstance(value, int):
        if value.bit_length() > 3 * _MAX_DIGITS:
            raise FieldError(f"out of range: {show(value)}")
        amount = Decimal(value)
    elif isinstance(value, float):
        raise FieldError(f"not an exact decimal (binary float): {show(value)}")
    elif (
        isinstance(value, str) and len(value) <= 2 * _MAX_DIGITS and _DECIMAL_TEXT.fullmatch(value)
    ):
        amount = Decimal(value.strip())
    else:
        raise FieldError(f"not a number: {show(value)}")
    if not amount.is_finite():
        raise FieldError(f"not finite: {show(amount)}")
    if amount.is_signed():
        if amount:
            raise FieldError(f"negative: {show(amount)}")
        amount = amount.copy_abs()  # -0.00 is 0.00: PostgreSQL numeric has no negative zero
    # <= 1000 digits before the point, <= 2000 after: well inside PostgreSQL's numeric.
    if not -_MAX_DIGITS <= amount.adjusted() < _MAX_DIGITS or len(str(amount)) > _MAX_DIGITS:
        raise FieldError(f"out of range: {show(amount)}")
    return amount


# --- timestamps -------------------------------------------------------------------


def parse_utc(value: Any) -> datetime:
    """An ISO 8601 timestamp (as `datetime.fromisoformat` reads it) in UTC; no offset is UTC.

    >>> parse_utc("2015-12-31T23:59:59.5+01:00")
    datetime.datetime(2015, 12, 31, 22, 59, 59, 500000, tzinfo=datetime.timezone.utc)
    >>> parse_utc("2026-01-02T03:04:05Z") == parse_utc("2026-01-02T03:04:05")
    True
    >>> parse_utc("tomorrow")
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not an ISO 8601 timestamp: 'tomorrow'
    """
    if not isinstance(value, str):
        raise FieldError(f"not a string: {show(value)}")
    try:
        return _parse_utc_text(value)
    except (ValueError, OverflowError):
        raise FieldError(f"not an ISO 8601 timestamp: {show(value)}") from None


# An offset with seconds ("+00:00:30", "+00:00:00.5"): not ISO 8601, and
# fromisoformat drops its fraction of a second, so it is refused rather than misread.
_OFFSET_WITH_SECONDS = re.compile(r"[+-]\d\d:?\d\d:?\d\d(?:[.,]\d+)?$")


@lru_cache(maxsize=8192)  # listings repeat timestamps (end of month); datetimes are immutable
def _parse_utc_text(text: str) -> datetime:
    if _OFFSET_WITH_SECONDS.search(text):
        raise ValueError("a UTC offset with seconds")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
