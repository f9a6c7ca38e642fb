"""Run bookkeeping: `sync_runs`, `sync_run_sources`, `provider_accounts`, and status queries.

`sync_runs` and `sync_run_sources` are written in their own short
transactions, outside the load transaction of a (source, account), so that a
failed load is still recorded (SPEC §5.7). `upsert_provider_account` is the
exception: it marks a success, so it runs inside the load's transaction and
commits (or not) with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, column, func, insert, select, table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from etl.db.load import LoadResult
from etl.db.schema import (
    COUNT_COLUMNS,
    RUN_STATUSES,
    SOURCE_STATUSES,
    TRIGGERS,
    provider_accounts,
    sync_run_sources,
    sync_runs,
)

FRESHNESS_COLUMNS = (
    "source",
    "account_id",
    "last_success_at",
    "age",
    "last_status",
    "last_run_id",
    "last_attempt_at",
    "last_error",
    "shared_number",
)
# The view is created by the migrations, not by etl.db.schema; this is its shape.
_SOURCE_FRESHNESS = table("source_freshness", *(column(name) for name in FRESHNESS_COLUMNS))

ABORTED_ERROR = (
    "aborted: the process running this sync stopped before finishing it (found by the next sync)"
)


def start_run(engine: Engine, *, trigger: str, started_at: datetime) -> int:
    """Record a new run with status 'running'; return its id."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")
    with engine.begin() as conn:
        statement = (
            insert(sync_runs)
            .values(trigger=trigger, started_at=started_at, status="running")
            .returning(sync_runs.c.id)
        )
        run_id: int = conn.execute(statement).scalar_one()
    return run_id


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    status: str,
    finished_at: datetime,
    error: str | None = None,
) -> None:
    """Set the final status (succeeded, partial, failed or aborted) of a run."""
    if status not in RUN_STATUSES or status == "running":
        raise ValueError(f"a finished run's status is one of {RUN_STATUSES[1:]}, not {status!r}")
    with engine.begin() as conn:
        conn.execute(
            update(sync_runs)
            .where(sync_runs.c.id == run_id)
            .values(status=status, finished_at=finished_at, error=error)
        )


def record_run_source(
    engine: Engine,
    run_id: int,
    *,
    source: str,
    account_id: str,
    status: str,
    result: LoadResult | None,
    error: str | None,
    duration_ms: int,
) -> None:
    """Record how one (source, account) went in a run; counts are NULL without a result."""
    if status not in SOURCE_STATUSES:
        raise ValueError(f"status must be one of {SOURCE_STATUSES}, not {status!r}")
    counts = {name: getattr(result, name) if result else None for name in COUNT_COLUMNS}
    with engine.begin() as conn:
        conn.execute(
            insert(sync_run_sources).values(
                run_id=run_id,
                source=source,
                account_id=account_id,
                status=status,
                error=error,
                duration_ms=duration_ms,
                **counts,
            )
        )


def abort_stale_runs(engine: Engine, *, now: datetime) -> int:
    """Mark every 'running' run aborted; return how many there were.

    Call it while holding the sync lock: then no other sync is running, and a
    'running' row is left over from a process that was killed.
    """
    with engine.begin() as conn:
        result = conn.execute(
            update(sync_runs)
            .where(sync_runs.c.status == "running")
            .values(status="aborted", finished_at=now, error=ABORTED_ERROR)
        )
        return result.rowcount


def upsert_provider_account(
    conn: Connection,
    *,
    source: str,
    account_id: str,
    shared_number: str | None,
    run_id: int,
    success_at: datetime,
) -> None:
    """Record a successful load of (source, account), in the caller's load transaction.

    `last_success_at` never moves back: a backfill of an older archive leaves a
    newer success (and its shared number and run id) in place.
    """
    statement = pg_insert(provider_accounts).values(
        source=source,
        account_id=account_id,
        shared_number=shared_number,
        last_success_at=success_at,
        last_run_id=run_id,
    )
    excluded = statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[provider_accounts.c.source, provider_accounts.c.account_id],
            set_={
                "shared_number": excluded.shared_number,
                "last_success_at": excluded.last_success_at,
                "last_run_id": excluded.last_run_id,
            },
            where=(
                provider_accounts.c.last_success_at.is_(None)
                | (provider_accounts.c.last_success_at <= excluded.last_success_at)
            ),
        )
    )


def fetch_recent_runs(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its per-source totals.

    Keys: id, trigger, status, started_at, finished_at, error, sources,
    failed_sources, and the sums of fetched, inserted, updated, unchanged,
    removed and rejected (0 when no source recorded counts).
    """
    s = sync_run_sources.c
    totals = (
        select(
            s.run_id,
            func.count().label("sources"),
            func.count().filter(s.status == "failed").label("failed_sources"),
            *(func.coalesce(func.sum(s[name]), 0).label(name) for name in COUNT_COLUMNS),
        )
        .group_by(s.run_id)
        .subquery()
    )
    r = sync_runs.c
    query = (
        select(
            r.id,
            r.trigger,
            r.status,
            r.started_at,
            r.finished_at,
            r.error,
            func.coalesce(totals.c.sources, 0).label("sources"),
            func.coalesce(totals.c.failed_sources, 0).label("failed_sources"),
            *(func.coalesce(totals.c[name], 0).label(name) for name in COUNT_COLUMNS),
        )
        .select_from(sync_runs.outerjoin(totals, totals.c.run_id == r.id))
        .order_by(r.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def fetch_freshness(engine: Engine) -> list[dict[str, Any]]:
    """Rows of the `source_freshness` view, by source and account.

    Keys: source, account_id, last_success_at, age (timedelta or None),
    last_status, last_run_id, last_attempt_at, last_error, shared_number.
    """
    view = _SOURCE_FRESHNESS
    query = select(view).order_by(view.c.source, view.c.account_id)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
