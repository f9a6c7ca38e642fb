"""The SQL contract of SPEC §7: tables, constraints, indexes and views.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = postgresql.TIMESTAMP(timezone=True)
COUNTS = ("fetched", "inserted", "updated", "unchanged", "removed", "rejected")


def _key() -> list[sa.Column[object]]:
    return [
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("e164", sa.Text(), nullable=False),
    ]


def _attributes() -> list[sa.Column[object]]:
    """The normalized attributes, in NumberRow order (frozen for this revision)."""
    return [
        sa.Column("country_code", sa.Text()),
        sa.Column("country", sa.Text()),
        sa.Column("city", sa.Text()),
        sa.Column("area_code", sa.Text()),
        sa.Column("capabilities", postgresql.ARRAY(sa.Text())),
        sa.Column("group_id", sa.BigInteger()),
        sa.Column("application_key", sa.Text()),
        sa.Column("label", sa.Text()),
        sa.Column("number_type", sa.Text()),
        sa.Column("billing_status", sa.Text()),
        sa.Column("registered_at", TSTZ),
        sa.Column("released_at", TSTZ),
        sa.Column("expires_at", TSTZ),
        sa.Column("cost_amount", sa.Numeric()),
        sa.Column("cost_currency", sa.Text()),
    ]


def _create_tables() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("started_at", TSTZ, nullable=False),
        sa.Column("finished_at", TSTZ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
        sa.CheckConstraint(
            "trigger IN ('schedule', 'manual', 'backfill', 'demo')",
            name=op.f("ck_sync_runs_trigger"),
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed', 'aborted')",
            name=op.f("ck_sync_runs_status"),
        ),
        sa.CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)",
            name=op.f("ck_sync_runs_finished_iff_done"),
        ),
    )
    op.create_table(
        "phone_numbers",
        *_key(),
        *_attributes(),
        sa.Column("first_seen_at", TSTZ, nullable=False),
        sa.Column("updated_at", TSTZ, nullable=False),
        sa.Column("removed_at", TSTZ),
        sa.Column("raw", postgresql.JSONB()),
        sa.Column("last_run_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "account_id", "e164", name=op.f("pk_phone_numbers")),
        sa.CheckConstraint(r"e164 ~ '^\+[0-9]+$'", name=op.f("ck_phone_numbers_e164")),
        sa.CheckConstraint("cost_amount >= 0", name=op.f("ck_phone_numbers_cost_amount")),
        sa.CheckConstraint(
            "cost_currency ~ '^[A-Z]{3}$'", name=op.f("ck_phone_numbers_cost_currency")
        ),
    )
    op.create_index(
        op.f("ix_phone_numbers_expires_at"),
        "phone_numbers",
        ["expires_at"],
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_table(
        "phone_number_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *_key(),
        *_attributes(),
        sa.Column("valid_from", TSTZ, nullable=False),
        sa.Column("valid_to", TSTZ),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_number_versions")),
        sa.CheckConstraint(
            "valid_to >= valid_from", name=op.f("ck_phone_number_versions_valid_range")
        ),
    )
    op.create_index(
        op.f("uq_phone_number_versions_open"),
        "phone_number_versions",
        ["source", "account_id", "e164"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        op.f("ix_phone_number_versions_e164_valid_from"),
        "phone_number_versions",
        ["e164", "valid_from"],
    )
    op.create_table(
        "sync_run_sources",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        *(sa.Column(name, sa.Integer()) for name in COUNTS),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "source", "account_id", name=op.f("pk_sync_run_sources")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_sync_run_sources_run_id_sync_runs")
        ),
        sa.CheckConstraint(
            "status IN ('succeeded', 'failed')", name=op.f("ck_sync_run_sources_status")
        ),
        sa.CheckConstraint(
            " AND ".join(f"{name} >= 0" for name in (*COUNTS, "duration_ms")),
            name=op.f("ck_sync_run_sources_counts_not_negative"),
        ),
    )
    op.create_index(
        op.f("ix_sync_run_sources_source_account_id_run_id"),
        "sync_run_sources",
        ["source", "account_id", "run_id"],
    )
    op.create_table(
        "rejected_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("e164", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", postgresql.JSONB()),
        sa.Column("created_at", TSTZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_records")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_rejected_records_run_id_sync_runs")
        ),
    )
    op.create_index(op.f("ix_rejected_records_run_id"), "rejected_records", ["run_id"])
    op.create_table(
        "provider_accounts",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("shared_number", sa.Text()),
        sa.Column("last_success_at", TSTZ),
        sa.Column("last_run_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("source", "account_id", name=op.f("pk_provider_accounts")),
        sa.ForeignKeyConstraint(
            ["last_run_id"],
            ["sync_runs.id"],
            name=op.f("fk_provider_accounts_last_run_id_sync_runs"),
        ),
    )


NUMBER_COLUMNS = """
    source, account_id, e164, country_code, country, city, area_code, capabilities,
    group_id, application_key, label, number_type, billing_status, registered_at,
    released_at, expires_at, cost_amount, cost_currency, first_seen_at, updated_at,
    raw, last_run_id"""

VIEWS: dict[str, str] = {
    # Numbers we hold now.
    "active_numbers": f"""
SELECT {NUMBER_COLUMNS}
FROM phone_numbers
WHERE removed_at IS NULL""",
    # Monthly cost of the active numbers. Grouped by currency, so amounts in two
    # currencies are never added; numbers without a currency get no total.
    "cost_by_country": """
SELECT source, country_code, cost_currency,
       count(*) AS numbers,
       count(cost_amount) AS priced_numbers,
       CASE WHEN cost_currency IS NOT NULL THEN sum(cost_amount) END AS total_cost
FROM active_numbers
GROUP BY source, country_code, cost_currency""",
    # Active numbers whose rental period ends in the next 30 days:
    # now() <= expires_at < now() + 30 days. A number expiring exactly now is in,
    # one expiring exactly 30 days from now is out, and already-expired ones are
    # out. now() is the start of the querying transaction.
    "expiring_numbers": f"""
SELECT {NUMBER_COLUMNS},
       expires_at - now() AS expires_in
FROM active_numbers
WHERE expires_at >= now() AND expires_at < now() + interval '30 days'""",
    # One row per (source, account) ever synced or attempted: the last success,
    # its age, and the status of the latest attempt (highest run id).
    "source_freshness": """
SELECT k.source, k.account_id,
       a.last_success_at,
       now() - a.last_success_at AS age,
       latest.status AS last_status,
       latest.run_id AS last_run_id,
       r.started_at AS last_attempt_at,
       latest.error AS last_error,
       a.shared_number
FROM (
    SELECT source, account_id FROM provider_accounts
    UNION
    SELECT source, account_id FROM sync_run_sources
) AS k
LEFT JOIN provider_accounts AS a
       ON a.source = k.source AND a.account_id = k.account_id
LEFT JOIN LATERAL (
    SELECT s.run_id, s.status, s.error
    FROM sync_run_sources AS s
    WHERE s.source = k.source AND s.account_id = k.account_id
    ORDER BY s.run_id DESC
    LIMIT 1
) AS latest ON true
LEFT JOIN sync_runs AS r ON r.id = latest.run_id""",
}


def upgrade() -> None:
    """Create the tables, then the views on them."""
    _create_tables()
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS{query}")


def downgrade() -> None:
    """Drop everything this revision created."""
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    for table in (
        "provider_accounts",
        "rejected_records",
        "sync_run_sources",
        "phone_number_versions",
        "phone_numbers",
        "sync_runs",
    ):
        op.drop_table(table)
