"""Archive during sync and backfill from the archive (SPEC §6)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from etl.backfill import backfill
from etl.pipeline import sync
from etl.settings import Settings
from etl.simulator import Simulator

SettingsFactory = Callable[..., Settings]
DAY1 = datetime(2026, 11, 1, 10, 0, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)
STATE = (
    "SELECT source, account_id, e164, cost_amount, label, removed_at "
    "FROM phone_numbers ORDER BY 1, 2, 3"
)
VERSIONS = (
    "SELECT source, account_id, e164, cost_amount, label, valid_from, valid_to "
    "FROM phone_number_versions ORDER BY 1, 2, 3, valid_from"
)


def snapshot(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    """All rows of a query, as tuples."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def wipe(engine: Engine) -> None:
    """Empty every table, as a fresh database would be."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE phone_numbers, phone_number_versions, phone_number_digests, "
                "rejected_records, sync_run_sources, provider_accounts, sync_runs "
                "RESTART IDENTITY CASCADE"
            )
        )


def archived_two_days(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator, archive: Path
) -> Settings:
    """Sync day 1 and day 2 (a changed revision) with the archive on; return the settings."""
    settings = make_settings(NUMBERS_ETL_ARCHIVE_DIR=str(archive))
    sync(engine, settings, clock=lambda: DAY1)
    simulator.set_dataset(revision=1)
    sync(engine, settings, clock=lambda: DAY2)
    return settings


def test_sync_archives_each_listing_under_source_account_and_time(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator, tmp_path: Path
) -> None:
    """Each (source, account) listing is archived as gzip JSON named by the run time."""
    archive = tmp_path / "archive"
    archived_two_days(engine, make_settings, simulator, archive)
    org = simulator.env()["SINCH_ORGANISATION_ID"]
    names = sorted(str(p.relative_to(archive)) for p in archive.rglob("*.json.gz"))
    assert names == [
        "pingram/default/20261101T100000Z.json.gz",
        "pingram/default/20261102T100000Z.json.gz",
        f"sinch/{org}/20261101T100000Z.json.gz",
        f"sinch/{org}/20261102T100000Z.json.gz",
    ]
    first = gzip.decompress((archive / f"sinch/{org}/20261101T100000Z.json.gz").read_bytes())
    assert first.startswith(b"[")


def test_backfill_rebuilds_state_and_history_at_the_archive_times(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator, tmp_path: Path
) -> None:
    """Backfilling the archive into an empty database gives the same rows and versions."""
    archive = tmp_path / "archive"
    settings = archived_two_days(engine, make_settings, simulator, archive)
    state, versions = snapshot(engine, STATE), snapshot(engine, VERSIONS)
    wipe(engine)
    result = backfill(engine, settings, [archive])
    assert result.exit_code == 0
    assert len(result.loaded) == 4
    assert snapshot(engine, STATE) == state
    assert snapshot(engine, VERSIONS) == versions
    runs = snapshot(engine, "SELECT trigger, started_at, status FROM sync_runs ORDER BY id")
    assert runs == [("backfill", DAY1, "succeeded")] * 2 + [("backfill", DAY2, "succeeded")] * 2


def test_backfill_twice_changes_nothing(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator, tmp_path: Path
) -> None:
    """A second backfill of the same files skips them all and rewrites no row."""
    archive = tmp_path / "archive"
    settings = archived_two_days(engine, make_settings, simulator, archive)
    wipe(engine)
    backfill(engine, settings, [archive])
    xmins = snapshot(engine, "SELECT e164, xmin::text FROM phone_numbers ORDER BY 1")
    again = backfill(engine, settings, [archive])
    assert (len(again.loaded), len(again.skipped), again.problems) == (0, 4, [])
    assert snapshot(engine, "SELECT e164, xmin::text FROM phone_numbers ORDER BY 1") == xmins


def test_a_broken_archive_is_reported_and_the_rest_load(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator, tmp_path: Path
) -> None:
    """A corrupt archive file fails alone (exit 1); the other archives still load."""
    archive = tmp_path / "archive"
    settings = archived_two_days(engine, make_settings, simulator, archive)
    wipe(engine)
    broken = archive / "pingram" / "default" / "20261102T100000Z.json.gz"
    broken.write_bytes(gzip.compress(b'{"numbers": [{"phoneNumber": "+1415')[:-4])
    result = backfill(engine, settings, [archive])
    assert result.exit_code == 1
    assert len(result.problems) == 1
    assert "20261102T100000Z.json.gz" in result.problems[0]
    assert len(result.loaded) == 4
    statuses = snapshot(engine, "SELECT status, count(*) FROM sync_runs GROUP BY 1 ORDER BY 1")
    assert statuses == [("failed", 1), ("succeeded", 3)]
