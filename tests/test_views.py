"""The analyst views (SPEC §7) on hand-made rows.

Rows are inserted relative to now() and the views read in the same
transaction, where now() does not move, so the 30-day edges are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

T1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction holding a run, rolled back at the end."""
    with engine.connect() as connection:
        connection.execute(
            text(
                "INSERT INTO sync_runs (id, trigger, started_at, finished_at, status) "
                "VALUES (1, 'manual', :t, :t, 'succeeded')"
            ),
            {"t": T1},
        )
        yield connection
        connection.rollback()


def add_number(
    conn: Connection,
    e164: str,
    *,
    source: str = "sinch",
    country_code: str | None = "US",
    cost: str | None = None,
    currency: str | None = None,
    expires_in: timedelta | None = None,
    removed: bool = False,
) -> None:
    """Insert a phone_numbers row; expires_at is now() + expires_in."""
    conn.execute(
        text(
            "INSERT INTO phone_numbers (source, account_id, e164, country_code, cost_amount, "
            "cost_currency, expires_at, first_seen_at, updated_at, removed_at, last_run_id) "
            "VALUES (:source, 'a', :e164, :country_code, CAST(:cost AS numeric), :currency, "
            "now() + CAST(:expires_in AS interval), :t, :t, "
            "CASE WHEN :removed THEN CAST(:t AS timestamptz) END, 1)"
        ),
        {
            "source": source,
            "e164": e164,
            "country_code": country_code,
            "cost": cost,
            "currency": currency,
            "expires_in": expires_in,
            "removed": removed,
            "t": T1,
        },
    )


def fetch(conn: Connection, query: str) -> list[dict[str, Any]]:
    """Every row of a query, as dicts."""
    return [dict(row) for row in conn.execute(text(query)).mappings()]


def test_active_numbers_leaves_out_removed_ones(conn: Connection) -> None:
    """active_numbers has the current numbers, with every phone_numbers column but removed_at."""
    add_number(conn, "+14150000001")
    add_number(conn, "+14150000002", removed=True)

    rows = fetch(conn, "SELECT * FROM active_numbers")

    assert [row["e164"] for row in rows] == ["+14150000001"]
    assert list(rows[0]) == [
        "source",
        "account_id",
        "e164",
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
        "first_seen_at",
        "updated_at",
        "raw",
        "last_run_id",
    ]


def test_cost_by_country_never_adds_two_currencies(conn: Connection) -> None:
    """Totals are per source, country and currency; unpriced and removed numbers add nothing."""
    add_number(conn, "+14150000001", cost="1.25", currency="USD")
    add_number(conn, "+14150000002", cost="0.75", currency="USD")
    add_number(conn, "+14150000003", cost="2.00", currency="EUR")
    add_number(conn, "+14150000004")
    add_number(conn, "+14150000005", cost="9.99", currency="USD", removed=True)
    add_number(conn, "+442000000001", country_code="GB", cost="1.00", currency="USD")
    add_number(conn, "+14150000001", source="pingram", cost="1.15", currency="USD")

    rows = fetch(
        conn,
        "SELECT * FROM cost_by_country ORDER BY source, country_code, cost_currency NULLS LAST",
    )

    assert rows == [
        {
            "source": "pingram",
            "country_code": "US",
            "cost_currency": "USD",
            "numbers": 1,
            "priced_numbers": 1,
            "total_cost": Decimal("1.15"),
        },
        {
            "source": "sinch",
            "country_code": "GB",
            "cost_currency": "USD",
            "numbers": 1,
            "priced_numbers": 1,
            "total_cost": Decimal("1.00"),
        },
        {
            "source": "sinch",
            "country_code": "US",
            "cost_currency": "EUR",
            "numbers": 1,
            "priced_numbers": 1,
            "total_cost": Decimal("2.00"),
        },
        {
            "source": "sinch",
            "country_code": "US",
            "cost_currency": "USD",
            "numbers": 2,
            "priced_numbers": 2,
            "total_cost": Decimal("2.00"),
        },
        {
            "source": "sinch",
            "country_code": "US",
            "cost_currency": None,
            "numbers": 1,
            "priced_numbers": 0,
            "total_cost": None,
        },
    ]


def test_expiring_numbers_edges(conn: Connection) -> None:
    """In: now (inclusive) to now + 30 days (exclusive); out: expired, later, removed, unknown."""
    day = timedelta(days=1)
    second = timedelta(seconds=1)
    cases = {
        "+14150000001": -second,  # already expired
        "+14150000002": timedelta(0),  # expires exactly now: in
        "+14150000003": 29 * day,
        "+14150000004": 30 * day - second,
        "+14150000005": 30 * day,  # exactly 30 days: out
        "+14150000006": 31 * day,
        "+14150000007": None,  # no expiry known
    }
    for e164, expires_in in cases.items():
        add_number(conn, e164, expires_in=expires_in)
    add_number(conn, "+14150000008", expires_in=10 * day, removed=True)

    rows = fetch(conn, "SELECT e164, expires_in FROM expiring_numbers ORDER BY expires_at")

    assert rows == [
        {"e164": "+14150000002", "expires_in": timedelta(0)},
        {"e164": "+14150000003", "expires_in": 29 * day},
        {"e164": "+14150000004", "expires_in": 30 * day - second},
    ]


def test_source_freshness_shows_last_success_and_latest_attempt(conn: Connection) -> None:
    """One row per account ever attempted: last success and its age, status of the latest run."""
    for run_id, hours in ((2, 3), (3, 1)):
        conn.execute(
            text(
                "INSERT INTO sync_runs (id, trigger, started_at, status) "
                "VALUES (:id, 'schedule', :t, 'running')"
            ),
            {"id": run_id, "t": T1 + timedelta(hours=hours)},
        )
    conn.execute(
        text(
            "INSERT INTO provider_accounts "
            "VALUES ('sinch', '1', NULL, now() - interval '2 hours', 2)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO sync_run_sources (run_id, source, account_id, status, error, duration_ms) "
            "VALUES (1, 'sinch', '1', 'succeeded', NULL, 5),"
            " (2, 'sinch', '1', 'succeeded', NULL, 5),"
            " (3, 'sinch', '1', 'failed', 'HTTP 500', 5),"
            " (3, 'pingram', 'default', 'failed', 'HTTP 401', 5)"
        )
    )
    [last_success] = conn.execute(text("SELECT now() - interval '2 hours'")).scalars()

    rows = fetch(conn, "SELECT * FROM source_freshness ORDER BY source, account_id")

    assert rows == [
        {
            "source": "pingram",
            "account_id": "default",
            "last_success_at": None,
            "age": None,
            "last_status": "failed",
            "last_run_id": 3,
            "last_attempt_at": T1 + timedelta(hours=1),
            "last_error": "HTTP 401",
            "shared_number": None,
        },
        {
            "source": "sinch",
            "account_id": "1",
            "last_success_at": last_success,
            "age": timedelta(hours=2),
            "last_status": "failed",
            "last_run_id": 3,
            "last_attempt_at": T1 + timedelta(hours=1),
            "last_error": "HTTP 500",
            "shared_number": None,
        },
    ]
