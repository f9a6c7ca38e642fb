"""Run bookkeeping in sync_runs, sync_run_sources and provider_accounts, and the status queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from etl.db.load import LoadResult
from etl.db.runs import (
    ABORTED_ERROR,
    abort_stale_runs,
    fetch_freshness,
    fetch_recent_runs,
    finish_run,
    record_run_source,
    start_run,
    upsert_provider_account,
)

T1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 1, 11, 0, tzinfo=UTC)
T3 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fetch(engine: Engine, query: str) -> list[dict[str, Any]]:
    """Every row of a query, as dicts."""
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(query)).mappings()]


def test_start_run_records_a_running_run(engine: Engine) -> None:
    """start_run commits a 'running' row and returns its id."""
    run_id = start_run(engine, trigger="schedule", started_at=T1)

    assert run_id == 1
    assert fetch(engine, "SELECT * FROM sync_runs") == [
        {
            "id": 1,
            "trigger": "schedule",
            "started_at": T1,
            "finished_at": None,
            "status": "running",
            "error": None,
        }
    ]


def test_finish_run_sets_status_time_and_error(engine: Engine) -> None:
    """finish_run stores the final status, when it finished and why it failed."""
    run_id = start_run(engine, trigger="manual", started_at=T1)

    finish_run(engine, run_id, status="partial", finished_at=T2, error="pingram: HTTP 500")

    assert fetch(engine, "SELECT status, finished_at, error FROM sync_runs") == [
        {"status": "partial", "finished_at": T2, "error": "pingram: HTTP 500"}
    ]


def test_bad_trigger_and_status_are_refused(engine: Engine) -> None:
    """A trigger or status outside the contract is a programmer error."""
    with pytest.raises(ValueError, match="trigger must be one of"):
        start_run(engine, trigger="cron", started_at=T1)
    run_id = start_run(engine, trigger="demo", started_at=T1)
    with pytest.raises(ValueError, match="a finished run's status"):
        finish_run(engine, run_id, status="running", finished_at=T2)


def test_record_run_source_with_and_without_counts(engine: Engine) -> None:
    """A success stores the load counts; a failure stores its error and NULL counts."""
    run_id = start_run(engine, trigger="manual", started_at=T1)
    result = LoadResult(fetched=5, inserted=3, updated=1, unchanged=0, removed=1, rejected=1)

    record_run_source(
        engine,
        run_id,
        source="sinch",
        account_id="org-1",
        status="succeeded",
        result=result,
        error=None,
        duration_ms=1234,
    )
    record_run_source(
        engine,
        run_id,
        source="pingram",
        account_id="default",
        status="failed",
        result=None,
        error="pingram/default: HTTP 401",
        duration_ms=56,
    )

    assert fetch(engine, "SELECT * FROM sync_run_sources ORDER BY source") == [
        {
            "run_id": 1,
            "source": "pingram",
            "account_id": "default",
            "status": "failed",
            "fetched": None,
            "inserted": None,
            "updated": None,
            "unchanged": None,
            "removed": None,
            "rejected": None,
            "error": "pingram/default: HTTP 401",
            "duration_ms": 56,
        },
        {
            "run_id": 1,
            "source": "sinch",
            "account_id": "org-1",
            "status": "succeeded",
            "fetched": 5,
            "inserted": 3,
            "updated": 1,
            "unchanged": 0,
            "removed": 1,
            "rejected": 1,
            "error": None,
            "duration_ms": 1234,
        },
    ]


def test_abort_stale_runs_marks_only_running_runs(engine: Engine) -> None:
    """Runs left 'running' by a killed process become 'aborted'; finished runs stay as they are."""
    done = start_run(engine, trigger="manual", started_at=T1)
    finish_run(engine, done, status="succeeded", finished_at=T1 + timedelta(seconds=5))
    start_run(engine, trigger="schedule", started_at=T2)

    assert abort_stale_runs(engine, now=T3) == 1
    assert abort_stale_runs(engine, now=T3) == 0
    assert fetch(engine, "SELECT id, status, finished_at, error FROM sync_runs ORDER BY id") == [
        {"id": 1, "status": "succeeded", "finished_at": T1 + timedelta(seconds=5), "error": None},
        {"id": 2, "status": "aborted", "finished_at": T3, "error": ABORTED_ERROR},
    ]


def test_upsert_provider_account_inserts_then_updates(engine: Engine) -> None:
    """The account row is created by its first success and moved forward by later ones."""
    first = start_run(engine, trigger="manual", started_at=T1)
    second = start_run(engine, trigger="manual", started_at=T2)

    with engine.begin() as conn:
        upsert_provider_account(
            conn,
            source="pingram",
            account_id="default",
            shared_number="+15550001111",
            run_id=first,
            success_at=T1,
        )
    with engine.begin() as conn:
        upsert_provider_account(
            conn,
            source="pingram",
            account_id="default",
            shared_number=None,
            run_id=second,
            success_at=T2,
        )

    assert fetch(engine, "SELECT * FROM provider_accounts") == [
        {
            "source": "pingram",
            "account_id": "default",
            "shared_number": None,
            "last_success_at": T2,
            "last_run_id": 2,
        }
    ]


def test_older_success_never_moves_the_account_back(engine: Engine) -> None:
    """A backfill of an older archive leaves the newer last success in place."""
    newer = start_run(engine, trigger="manual", started_at=T3)
    backfill = start_run(engine, trigger="backfill", started_at=T3)
    with engine.begin() as conn:
        upsert_provider_account(
            conn, source="sinch", account_id="1", shared_number=None, run_id=newer, success_at=T3
        )
        upsert_provider_account(
            conn,
            source="sinch",
            account_id="1",
            shared_number="+1",
            run_id=backfill,
            success_at=T1,
        )

    assert fetch(
        engine, "SELECT shared_number, last_success_at, last_run_id FROM provider_accounts"
    ) == [{"shared_number": None, "last_success_at": T3, "last_run_id": 1}]


def test_provider_account_is_rolled_back_with_its_load(engine: Engine) -> None:
    """upsert_provider_account uses the caller's transaction, so a failed load leaves no success."""
    run_id = start_run(engine, trigger="manual", started_at=T1)

    def failed_load() -> None:
        with engine.begin() as conn:
            upsert_provider_account(
                conn,
                source="sinch",
                account_id="1",
                shared_number=None,
                run_id=run_id,
                success_at=T1,
            )
            raise RuntimeError("load failed")

    with pytest.raises(RuntimeError, match="load failed"):
        failed_load()

    assert fetch(engine, "SELECT count(*) AS n FROM provider_accounts") == [{"n": 0}]


def test_fetch_recent_runs_newest_first_with_totals(engine: Engine) -> None:
    """fetch_recent_runs lists the newest runs first with their per-source sums."""
    first = start_run(engine, trigger="schedule", started_at=T1)
    finish_run(engine, first, status="succeeded", finished_at=T1 + timedelta(seconds=3))
    second = start_run(engine, trigger="manual", started_at=T2)
    for source, result in (
        ("sinch", LoadResult(10, 2, 1, 7, 0, 1)),
        ("pingram", LoadResult(5, 0, 0, 4, 1, 0)),
    ):
        record_run_source(
            engine,
            second,
            source=source,
            account_id="a",
            status="succeeded",
            result=result,
            error=None,
            duration_ms=10,
        )
    record_run_source(
        engine,
        second,
        source="sinch",
        account_id="b",
        status="failed",
        result=None,
        error="boom",
        duration_ms=1,
    )
    finish_run(
        engine, second, status="partial", finished_at=T2 + timedelta(seconds=4), error="1 failed"
    )

    runs = fetch_recent_runs(engine, limit=5)

    assert runs == [
        {
            "id": 2,
            "trigger": "manual",
            "status": "partial",
            "started_at": T2,
            "finished_at": T2 + timedelta(seconds=4),
            "error": "1 failed",
            "sources": 3,
            "failed_sources": 1,
            "fetched": 15,
            "inserted": 2,
            "updated": 1,
            "unchanged": 11,
            "removed": 1,
            "rejected": 1,
        },
        {
            "id": 1,
            "trigger": "schedule",
            "status": "succeeded",
            "started_at": T1,
            "finished_at": T1 + timedelta(seconds=3),
            "error": None,
            "sources": 0,
            "failed_sources": 0,
            "fetched": 0,
            "inserted": 0,
            "updated": 0,
            "unchanged": 0,
            "removed": 0,
            "rejected": 0,
        },
    ]
    assert [run["id"] for run in fetch_recent_runs(engine, limit=1)] == [2]


def test_fetch_freshness_reads_the_view(engine: Engine) -> None:
    """fetch_freshness returns one dict per (source, account) from source_freshness."""
    run_id = start_run(engine, trigger="manual", started_at=T1)
    with engine.begin() as conn:
        upsert_provider_account(
            conn, source="sinch", account_id="1", shared_number=None, run_id=run_id, success_at=T1
        )
    record_run_source(
        engine,
        run_id,
        source="sinch",
        account_id="1",
        status="succeeded",
        result=LoadResult(1, 1, 0, 0, 0, 0),
        error=None,
        duration_ms=5,
    )

    [row] = fetch_freshness(engine)

    age = row.pop("age")
    assert isinstance(age, timedelta)  # its value is checked in test_views
    assert row == {
        "source": "sinch",
        "account_id": "1",
        "last_success_at": T1,
        "last_status": "succeeded",
        "last_run_id": 1,
        "last_attempt_at": T1,
        "last_error": None,
        "shared_number": None,
    }
