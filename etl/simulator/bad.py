"""Records that cannot be normalized, appended to a listing by ``Fault(bad_records=True)``.

Each one is wrong in exactly one way (SPEC §5.2), in this order, after the dataset's
records; numbers in +1 907 555 01xx never occur in the generated dataset:

Sinch (6): a copy of record 0 (``duplicate``; only when the listing has records), number
123 (impossible), ``cost.amount`` -1.00, ``cost.currencyId`` "dollars", ``expires``
"next tuesday", ``number`` null.

Pingram (6): a copy of record 0 (``duplicate``; idem), ``phoneNumber`` "+12" (impossible),
``createdAt`` "yesterday", ``monthlyPrice`` -1, ``monthlyPrice`` "cheap", no ``phoneNumber``.
"""

from __future__ import annotations

_SINCH_REST = (
    ',"groupId":1,"capabilities":["voice"],"countryId":"US","city":"ANCHORAGE","country":"US",'
    '"areaCode":"907"'
)
_EXPIRES = ',"expires":"2030-01-31T23:59:59+00:00"'


def _sinch(number: str, expires: str = _EXPIRES, amount: str = "1.00", cur: str = "USD") -> str:
    cost = f',"cost":{{"amount":{amount},"currencyId":"{cur}"}}'
    return f'{{"number":{number}{_SINCH_REST}{expires}{cost}}}'


SINCH_INVALID = (
    _sinch("123"),
    _sinch("19075550101", amount="-1.00"),
    _sinch("19075550102", cur="dollars"),
    _sinch("19075550103", expires=',"expires":"next tuesday"'),
    _sinch("null"),
)

_CREATED = '"createdAt":"2024-02-29T12:00:00.000Z"'
_NEW = ',"countryCode":"US","numberType":"local","billingStatus":"active"'

PINGRAM_INVALID = (
    f'{{"phoneNumber":"+12","label":"Impossible",{_CREATED}}}',
    '{"phoneNumber":"+1 907 555 0111","label":"Bad date","createdAt":"yesterday"}',
    f'{{"phoneNumber":"+19075550112",{_CREATED}{_NEW},"monthlyPrice":-1}}',
    f'{{"phoneNumber":"+19075550113",{_CREATED}{_NEW},"monthlyPrice":"cheap"}}',
    f'{{"label":"No number",{_CREATED}}}',
)

BAD_RECORDS_COUNT = 6  # per listing that has at least one record; 5 when it is empty


def bad_records(first: str | None, invalid: tuple[str, ...]) -> tuple[str, ...]:
    """The bad records to append: a copy of the first record (if any), then ``invalid``."""
    return ((first,) if first is not None else ()) + invalid
