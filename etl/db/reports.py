"""Read-only queries for the CLI: the demo's report and backfill's watermark."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

DEMO_QUERIES: dict[str, str] = {
    "active numbers by source": """
        SELECT source, count(*) AS numbers, count(DISTINCT country_code) AS countries
        FROM active_numbers GROUP BY source ORDER BY source
    """,
    "monthly cost by country (top 8)": """
        SELECT source, country_code, cost_currency, numbers, total_cost
        FROM cost_by_country ORDER BY total_cost DESC NULLS LAST, source, country_code LIMIT 8
    """,
    "expiring within 30 days": """
        SELECT source, count(*) AS numbers, min(expires_at)::date AS first_expiry
        FROM expiring_numbers GROUP BY source ORDER BY source
    """,
    "source freshness": """
        SELECT source, account_id, last_success_at, last_status FROM source_freshness
        ORDER BY source, account_id
    """,
}


def fetch_demo_report(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The demo's tables: each title with its rows."""
    with engine.connect() as conn:
        return {
            title: [dict(row._mapping) for row in conn.execute(text(sql))]
            for title, sql in DEMO_QUERIES.items()
        }


def fetch_last_success(engine: Engine, *, source: str, account_id: str) -> datetime | None:
    """When (source, account) was last loaded successfully, or None."""
    with engine.connect() as conn:
        value = conn.execute(
            text(
                "SELECT last_success_at FROM provider_accounts "
                "WHERE source = :source AND account_id = :account_id"
            ),
            {"source": source, "account_id": account_id},
        ).scalar()
    return value if isinstance(value, datetime) else None


def fetch_active_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Active numbers per (source, account)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source, account_id, count(*) FROM active_numbers GROUP BY 1, 2")
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}
