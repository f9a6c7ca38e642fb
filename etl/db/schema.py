"""The SQL contract (SPEC §7) as SQLAlchemy Core tables.

This module is the single description of the tables that `migrations/` must
produce: `tests/test_migrations.py` compares it with a migrated database and
fails on any drift. The views (`active_numbers`, `cost_by_country`,
`expiring_numbers`, `source_freshness`) are not tables and live only in the
migrations; `VIEW_NAMES` lists them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.types import TypeEngine

from etl.transform import ATTRIBUTE_COLUMNS

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

TRIGGERS = ("schedule", "manual", "backfill", "demo")
RUN_STATUSES = ("running", "succeeded", "partial", "failed", "aborted")
SOURCE_STATUSES = ("succeeded", "failed")
VIEW_NAMES = ("active_numbers", "cost_by_country", "expiring_numbers", "source_freshness")
COUNT_COLUMNS = ("fetched", "inserted", "updated", "unchanged", "removed", "rejected")


def _tstz(name: str, *, nullable: bool = True) -> Column[object]:
    return Column(name, TIMESTAMP(timezone=True), nullable=nullable)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _attribute_columns() -> list[Column[object]]:
    """The normalized attributes, in `ATTRIBUTE_COLUMNS` order (shared by two tables)."""
    types: dict[str, TypeEngine[Any]] = {
        "capabilities": ARRAY(Text),
        "group_id": BigInteger(),
        "registered_at": TIMESTAMP(timezone=True),
        "released_at": TIMESTAMP(timezone=True),
        "expires_at": TIMESTAMP(timezone=True),
        "cost_amount": Numeric(),
    }
    return [Column(name, types.get(name, Text())) for name in ATTRIBUTE_COLUMNS]


def _key_columns() -> list[Column[object]]:
    return [
        Column("source", Text, nullable=False),
        Column("account_id", Text, nullable=False),
        Column("e164", Text, nullable=False),
    ]


sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("trigger", Text, nullable=False),
    _tstz("started_at", nullable=False),
    _tstz("finished_at"),
    Column("status", Text, nullable=False),
    Column("error", Text),
    CheckConstraint(_in("trigger", TRIGGERS), name="trigger"),
    CheckConstraint(_in("status", RUN_STATUSES), name="status"),
    CheckConstraint("(status = 'running') = (finished_at IS NULL)", name="finished_iff_done"),
)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    *_key_columns(),
    *_attribute_columns(),
    _tstz("first_seen_at", nullable=False),
    _tstz("updated_at", nullable=False),
    _tstz("removed_at"),
    Column("raw", JSONB),
    # No foreign key to sync_runs here or in phone_number_versions: these are the
    # two tables a load writes row by row, and the per-row RI trigger cost 1.6 s
    # per 100,000 new numbers (16% of a first sync). Only the loader writes run ids.
    Column("last_run_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("source", "account_id", "e164"),
    CheckConstraint(r"e164 ~ '^\+[0-9]+$'", name="e164"),
    CheckConstraint("cost_amount >= 0", name="cost_amount"),
    CheckConstraint("cost_currency ~ '^[A-Z]{3}$'", name="cost_currency"),
)
Index(
    "ix_phone_numbers_expires_at",
    phone_numbers.c.expires_at,
    postgresql_where=phone_numbers.c.removed_at.is_(None),
)

phone_number_versions = Table(
    "phone_number_versions",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    *_key_columns(),
    *_attribute_columns(),
    _tstz("valid_from", nullable=False),
    _tstz("valid_to"),
    Column("run_id", BigInteger, nullable=False),  # no foreign key: see phone_numbers
    CheckConstraint("valid_to >= valid_from", name="valid_range"),
)
# At most one open version per number.
Index(
    "uq_phone_number_versions_open",
    phone_number_versions.c.source,
    phone_number_versions.c.account_id,
    phone_number_versions.c.e164,
    unique=True,
    postgresql_where=phone_number_versions.c.valid_to.is_(None),
)
Index(
    "ix_phone_number_versions_e164_valid_from",
    phone_number_versions.c.e164,
    phone_number_versions.c.valid_from,
)

# xxh3-128 of the exact listing element each active number was last read from
# (etl.transform.digest); internal to the loader. No index: see migration 0002.
phone_number_digests = Table(
    "phone_number_digests",
    metadata,
    *_key_columns(),
    Column("raw_digest", LargeBinary, nullable=False),
)

sync_run_sources = Table(
    "sync_run_sources",
    metadata,
    Column("run_id", BigInteger, ForeignKey("sync_runs.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    *(Column(name, Integer) for name in COUNT_COLUMNS),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    PrimaryKeyConstraint("run_id", "source", "account_id"),
    CheckConstraint(_in("status", SOURCE_STATUSES), name="status"),
    CheckConstraint(
        " AND ".join(f"{name} >= 0" for name in COUNT_COLUMNS) + " AND duration_ms >= 0",
        name="counts_not_negative",
    ),
)
Index(
    "ix_sync_run_sources_source_account_id_run_id",
    sync_run_sources.c.source,
    sync_run_sources.c.account_id,
    sync_run_sources.c.run_id,
)

rejected_records = Table(
    "rejected_records",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("run_id", BigInteger, ForeignKey("sync_runs.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("e164", Text),
    Column("reason", Text, nullable=False),
    Column("record", JSONB),
    _tstz("created_at", nullable=False),
)
Index("ix_rejected_records_run_id", rejected_records.c.run_id)

provider_accounts = Table(
    "provider_accounts",
    metadata,
    Column("source", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("shared_number", Text),
    _tstz("last_success_at"),
    Column("last_run_id", BigInteger, ForeignKey("sync_runs.id")),
    PrimaryKeyConstraint("source", "account_id"),
)

# The attribute columns must follow NumberRow exactly: the loader relies on it.
assert tuple(c.name for c in phone_numbers.c)[3:18] == ATTRIBUTE_COLUMNS
assert tuple(c.name for c in phone_number_versions.c)[4:19] == ATTRIBUTE_COLUMNS

__all__ = [
    "COUNT_COLUMNS",
    "NAMING_CONVENTION",
    "RUN_STATUSES",
    "SOURCE_STATUSES",
    "TRIGGERS",
    "VIEW_NAMES",
    "metadata",
    "phone_number_versions",
    "phone_numbers",
    "provider_accounts",
    "rejected_records",
    "sync_run_sources",
    "sync_runs",
]
