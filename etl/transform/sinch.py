"""Sinch "List all rented numbers" records → `NumberRow` (SPEC §5.1).

A record looks like the seed's::

    {"number": 14150005550, "groupId": 13, "capabilities": ["voice"],
     "applicationKey": "bb7b…", "countryId": "US", "city": "SAN FRANCISCO",
     "country": "US", "areaCode": "415", "expires": "2015-12-31T23:59:59+00:00",
     "cost": {"amount": 0.00, "currencyId": "USD"}}

Fields we do not know are ignored; absent or null fields become None. Decisions
where the API page leaves room:

- ``number`` must be an integer or a string of digits (a leading ``+`` is
  tolerated); a float or a non-integral JSON number is rejected, since a binary
  float may already have lost digits.
- Without ``countryId`` the country comes from the number, as for Pingram.
- ``countryId`` and ``cost.currencyId`` are trimmed and upper-cased ("usd" is
  USD); anything that is not then 2 (3) ASCII letters is rejected.
- ``capabilities: []`` is an empty tuple; a missing list is None.
- An amount without a currency is kept, with a NULL currency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from etl.transform import NumberRow, Rejection
from etl.transform.fields import (
    FieldError,
    country_for_e164,
    e164_from_digits,
    normalize_capabilities,
    parse_country,
    parse_currency,
    parse_money,
    parse_text,
    parse_utc,
    possible_e164,
    show,
)

SOURCE = "sinch"
# Bump whenever normalize_sinch_record would turn some record into a different row
# (a new rule, a fixed bug, a new column, a change in etl.transform.fields): stored
# digests then no longer match, and the next sync normalizes every element again
# instead of trusting the rows it stored (etl.transform.digest).
NORMALIZER_VERSION = 1
_MAX_NUMBER = 10**20  # more digits than any possible number (3-digit code + 17)
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,19}\s*")
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def to_sinch_e164(value: Any) -> str:
    """Sinch's ``number`` (an integer, or a string of digits) as E.164.

    >>> to_sinch_e164(14150005550), to_sinch_e164("14150005550")
    ('+14150005550', '+14150005550')
    >>> to_sinch_e164(1.415e10)
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not an integer or a string of digits: 14150000000.0
    """
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        if value <= 0:
            raise FieldError(f"not a positive integer: {show(value)}")
        if value.bit_length() > 128:  # far beyond any phone number, and str() would be slow
            raise FieldError(f"not a possible phone number: {show(value)}")
        return e164_from_digits(str(value))
    if isinstance(value, str):
        digits = value.strip()
        if digits.startswith("+"):
            digits = digits[1:]
        if digits.isdigit() and digits.isascii():
            return e164_from_digits(digits)
    raise FieldError(f"not an integer or a string of digits: {show(value)}")


def parse_group_id(value: Any) -> int:
    """Sinch's ``groupId``: an integer (or a string of digits) that fits a bigint.

    >>> parse_group_id(13), parse_group_id("13")
    (13, 13)
    >>> parse_group_id(13.0)
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not an integer: 13.0
    """
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and _INT_TEXT.fullmatch(value))
    ):
        raise FieldError(f"not an integer: {show(value)}")
    number = int(value)
    if not _BIGINT_MIN <= number <= _BIGINT_MAX:
        raise FieldError(f"out of range: {show(value)}")
    return number


def normalize_sinch_record(record: Any, *, account_id: str) -> NumberRow | Rejection:
    """One Sinch Number object as a row, or a rejection naming the bad field.

    >>> row = normalize_sinch_record(
    ...     {"number": 14150005550, "countryId": "US", "capabilities": ["voice"]},
    ...     account_id="8888123",
    ... )
    >>> row.e164, row.country_code, row.capabilities
    ('+14150005550', 'US', ('voice',))
    >>> normalize_sinch_record({"number": 999123}, account_id="8888123").reason
    "number: not a possible phone number: '+999123'"
    """
    if type(record) is not dict and not isinstance(record, Mapping):
        return Rejection(SOURCE, account_id, "record: not an object", record)
    get = record.get
    number = get("number")
    if number is None:
        return Rejection(SOURCE, account_id, "number: missing", record)
    if type(number) is int and 0 < number < _MAX_NUMBER and possible_e164(digits := str(number)):
        e164 = "+" + digits  # the common case, without the detours of to_sinch_e164
    else:
        try:
            e164 = to_sinch_e164(number)
        except FieldError as error:
            return Rejection(SOURCE, account_id, f"number: {error}", record, error.e164)

    field = "countryId"
    try:
        value = get("countryId")
        country_code = country_for_e164(e164) if value is None else parse_country(value)
        field = "country"
        country = parse_text(get("country"))
        field = "city"
        city = parse_text(get("city"))
        field = "areaCode"
        area_code = parse_text(get("areaCode"))
        field = "capabilities"
        value = get("capabilities")
        capabilities = None if value is None else normalize_capabilities(value)
        field = "groupId"
        value = get("groupId")
        group_id = None if value is None else parse_group_id(value)
        field = "applicationKey"
        application_key = parse_text(get("applicationKey"))
        field = "expires"
        value = get("expires")
        expires_at = None if value is None else parse_utc(value)
        field = "cost"
        cost = get("cost")
        cost_amount = cost_currency = None
        if cost is not None:
            if type(cost) is not dict and not isinstance(cost, Mapping):
                raise FieldError(f"not an object: {show(cost)}")
            field = "cost.amount"
            value = cost.get("amount")
            cost_amount = None if value is None else parse_money(value)
            field = "cost.currencyId"
            value = cost.get("currencyId")
            cost_currency = None if value is None else parse_currency(value)
    except FieldError as error:
        return Rejection(SOURCE, account_id, f"{field}: {error}", record, e164=e164)

    return NumberRow(
        source=SOURCE,
        account_id=account_id,
        e164=e164,
        raw=record,
        country_code=country_code,
        country=country,
        city=city,
        area_code=area_code,
        capabilities=capabilities,
        group_id=group_id,
        application_key=application_key,
        expires_at=expires_at,
        cost_amount=cost_amount,
        cost_currency=cost_currency,
    )
