"""The pure transform layer: provider records in, `NumberRow` or `Rejection` out.

Nothing in `etl.transform` does I/O or reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from decimal import Decimal
from typing import Any


class RawRecord(dict[str, Any]):
    """A provider record as parsed, carrying the exact JSON text it was parsed from.

    The extractors yield object records as RawRecords so that the loader can store
    `raw` without serializing the record again; a plain dict works everywhere too.
    """

    __slots__ = ("json_text",)
    json_text: str


# The normalized attributes, in the column order of `phone_numbers` (SPEC §7).
# A row is rewritten only when one of these changes (SPEC §5.3).
ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "country_code",
    "country",
    "city",
    "area_code",
    "capabilities",
    "group_id",
    "application_key",
    "label",
    "number_type",
    "billing_status",
    "registered_at",
    "released_at",
    "expires_at",
    "cost_amount",
    "cost_currency",
)


# Not frozen: a frozen dataclass's __init__ costs ~5x more per row, and at a million
# rows a sync that was 43% of normalization time. Treat instances as read-only.
@dataclass(slots=True)
class NumberRow:
    """One normalized phone number, keyed by (source, account_id, e164)."""

    source: str
    account_id: str
    e164: str
    raw: Any
    country_code: str | None = None
    country: str | None = None
    city: str | None = None
    area_code: str | None = None
    capabilities: tuple[str, ...] | None = None
    group_id: int | None = None
    application_key: str | None = None
    label: str | None = None
    number_type: str | None = None
    billing_status: str | None = None
    registered_at: datetime | None = None
    released_at: datetime | None = None
    expires_at: datetime | None = None
    cost_amount: Decimal | None = None
    cost_currency: str | None = None
    # The digest of the element text this row was normalized from (etl.transform.digest);
    # set by the pipeline, stored so that the next sync can skip the same text.
    raw_digest: bytes | None = None

    def attributes(self) -> dict[str, Any]:
        """The normalized attributes (everything but the key and `raw`)."""
        return {name: getattr(self, name) for name in ATTRIBUTE_COLUMNS}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that could not be normalized, with a reason naming the field.

    `e164` is set when the number itself was readable, so that a number present
    in a listing is never marked removed because another field was bad (§5.5).
    """

    source: str
    account_id: str
    reason: str
    record: Any
    e164: str | None = None


@dataclass(slots=True)
class Unchanged:
    """A listing element whose exact text an active row was normalized from (same digest).

    It is not normalized again; the loader confirms the digest and keeps the row as it is.
    `repeated` says an earlier element of the listing had the same digest (the loader
    then looks for duplicates among unchanged elements too).
    """

    digest: bytes
    repeated: bool = False


NormalizedItem = NumberRow | Rejection
LoadItem = NumberRow | Rejection | Unchanged

if tuple(f.name for f in dataclass_fields(NumberRow))[4:-1] != ATTRIBUTE_COLUMNS:
    raise ImportError("NumberRow's attribute fields must follow ATTRIBUTE_COLUMNS")
