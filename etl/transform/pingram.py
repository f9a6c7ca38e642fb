"""Pingram ``/numbers/list`` records → `NumberRow` (SPEC §4.2, §5.1).

Both schemas are accepted. The original record is
``{"phoneNumber", "label"?, "createdAt"}``; the newer one adds ``countryCode``,
``numberType``, ``billingStatus``, ``nextBillingDate`` (``YYYY-MM-DD``),
``monthlyPrice`` (USD) and ``releasedAt``. Fields we do not know are ignored.

Decisions where the API page leaves room:

- ``phoneNumber`` is documented as E.164, so one without a leading ``+`` is
  rejected rather than guessed into some country.
- ``createdAt`` is documented as required, so a record without it is rejected
  (with the number, so the number is not marked removed).
- ``monthlyPrice`` has no currency field: it is USD by the API's definition,
  and ``cost_currency`` is ``USD`` exactly when a price is present.
- Without ``countryCode`` (old schema) the country comes from the number.
- ``nextBillingDate`` must be exactly ``YYYY-MM-DD``; ``billingStatus`` and
  ``numberType`` are stored as sent, so new values need no code change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from etl.transform import NumberRow, Rejection
from etl.transform.fields import (
    FieldError,
    country_for_e164,
    parse_country,
    parse_money,
    parse_text,
    parse_utc,
    show,
    to_e164,
)

SOURCE = "pingram"
# Bump whenever normalize_pingram_record would turn some record into a different row
# (a new rule, a fixed bug, a new column, a change in etl.transform.fields): stored
# digests then no longer match, and the next sync normalizes every element again
# instead of trusting the rows it stored (etl.transform.digest).
NORMALIZER_VERSION = 1
PRICE_CURRENCY = "USD"


def parse_billing_date(value: Any) -> datetime:
    """``nextBillingDate`` (``YYYY-MM-DD``) as midnight UTC of that day, when the period ends.

    >>> parse_billing_date("2026-02-01")
    datetime.datetime(2026, 2, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_billing_date("2026-02-30")
    Traceback (most recent call last):
    ...
    etl.transform.fields.FieldError: not a YYYY-MM-DD date: '2026-02-30'
    """
    if not isinstance(value, str):
        raise FieldError(f"not a string: {show(value)}")
    try:
        return _parse_date_text(value)
    except ValueError:
        raise FieldError(f"not a YYYY-MM-DD date: {show(value)}") from None


@lru_cache(maxsize=4096)
def _parse_date_text(text: str) -> datetime:
    # date.fromisoformat also takes 20260201 and 2026-W05-7: insist on the documented form.
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(text)
    day = date.fromisoformat(text)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def normalize_pingram_record(record: Any, *, account_id: str) -> NumberRow | Rejection:
    """One Pingram number (either schema) as a row, or a rejection naming the bad field.

    >>> row = normalize_pingram_record(
    ...     {"phoneNumber": "+1 (415) 000-5550", "createdAt": "2026-01-02T03:04:05Z"},
    ...     account_id="default",
    ... )
    >>> row.e164, row.country_code, row.registered_at.isoformat()
    ('+14150005550', 'US', '2026-01-02T03:04:05+00:00')
    >>> normalize_pingram_record({"phoneNumber": "+14150005550"}, account_id="default").reason
    'createdAt: missing'
    """
    if type(record) is not dict and not isinstance(record, Mapping):
        return Rejection(SOURCE, account_id, "record: not an object", record)
    get = record.get
    phone_number = get("phoneNumber")
    if phone_number is None:
        return Rejection(SOURCE, account_id, "phoneNumber: missing", record)
    try:
        e164 = to_e164(phone_number)
    except FieldError as error:
        return Rejection(SOURCE, account_id, f"phoneNumber: {error}", record, error.e164)

    field = "createdAt"
    try:
        value = get("createdAt")
        if value is None:
            raise FieldError("missing")
        registered_at = parse_utc(value)
        field = "label"
        label = parse_text(get("label"))
        field = "countryCode"
        value = get("countryCode")
        country_code = country_for_e164(e164) if value is None else parse_country(value)
        field = "numberType"
        number_type = parse_text(get("numberType"))
        field = "billingStatus"
        billing_status = parse_text(get("billingStatus"))
        field = "releasedAt"
        value = get("releasedAt")
        released_at = None if value is None else parse_utc(value)
        field = "nextBillingDate"
        value = get("nextBillingDate")
        expires_at = None if value is None else parse_billing_date(value)
        field = "monthlyPrice"
        value = get("monthlyPrice")
        cost_amount = None if value is None else parse_money(value)
    except FieldError as error:
        return Rejection(SOURCE, account_id, f"{field}: {error}", record, e164=e164)

    return NumberRow(
        source=SOURCE,
        account_id=account_id,
        e164=e164,
        raw=record,
        country_code=country_code,
        label=label,
        number_type=number_type,
        billing_status=billing_status,
        registered_at=registered_at,
        released_at=released_at,
        expires_at=expires_at,
        cost_amount=cost_amount,
        cost_currency=None if cost_amount is None else PRICE_CURRENCY,
    )
