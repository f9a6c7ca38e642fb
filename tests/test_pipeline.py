"""End-to-end sync (SPEC §5, §7): simulator over HTTP → pipeline → real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, text

from etl.db.lock import sync_lock
from etl.db.runs import start_run
from etl.errors import SyncLocked
from etl.extract.sinch_auth import sign_sinch_request
from etl.pipeline import stale_sources, sync
from etl.settings import Settings, load_settings
from etl.simulator import Fault, Simulator
from etl.transform import ATTRIBUTE_COLUMNS, NumberRow
from etl.transform.pingram import normalize_pingram_record
from etl.transform.sinch import normalize_sinch_record

SettingsFactory = Callable[..., Settings]


def fetch_simulated_records(sim: Simulator, source: str) -> list[Any]:
    """The simulator's listing for `source`, fetched and parsed independently of the extractor."""
    env = sim.env()
    if source == "pingram":
        body = requests.get(
            f"{sim.url}/numbers/list",
            headers={"Authorization": f"Bearer {env['PINGRAM_API_KEY']}"},
            timeout=10,
        )
        body.raise_for_status()
        return list(json.loads(body.content, parse_float=Decimal)["numbers"])
    path = f"/v1/organisations/id/{env['SINCH_ORGANISATION_ID']}/numbers"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = sign_sinch_request(
        verb="GET",
        body=None,
        content_type="application/json",
        timestamp=stamp,
        path=path,
        secret=env["SINCH_INSTANCE_SECRET"],
    )
    body = requests.get(
        sim.url + path,
        headers={
            "Authorization": f"Instance {env['SINCH_INSTANCE_ID']}:{signature}",
            "x-timestamp": stamp,
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    body.raise_for_status()
    return list(json.loads(body.content, parse_float=Decimal))


def expected_rows(sim: Simulator, source: str, account_id: str) -> dict[str, dict[str, Any]]:
    """e164 → normalized attributes, as the pure transform makes them from the listing."""
    normalize = normalize_sinch_record if source == "sinch" else normalize_pingram_record
    rows: dict[str, dict[str, Any]] = {}
    for record in fetch_simulated_records(sim, source):
        item = normalize(record, account_id=account_id)
        if isinstance(item, NumberRow) and item.e164 not in rows:
            attributes = item.attributes()
            caps = attributes["capabilities"]
            attributes["capabilities"] = list(caps) if caps is not None else None
            rows[item.e164] = attributes
    return rows


def loaded_rows(engine: Engine, source: str) -> dict[str, dict[str, Any]]:
    """e164 → attributes of the active rows of `source` in phone_numbers."""
    columns = ", ".join(ATTRIBUTE_COLUMNS)
    with engine.connect() as conn:
        result = conn.execute(
            text(
                f"SELECT e164, {columns} FROM phone_numbers "
                "WHERE source = :s AND removed_at IS NULL"
            ),
            {"s": source},
        )
        return {row.e164: {c: getattr(row, c) for c in ATTRIBUTE_COLUMNS} for row in result}


def counts(result: Any) -> dict[str, dict[str, int]]:
    """source → its LoadResult as a dict, for literal comparisons."""
    return {o.source: vars(o.result) for o in result.outcomes if o.result is not None}


def test_full_sync_loads_every_number_of_both_sources_exactly(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator
) -> None:
    """A first sync loads each provider's listing row for row, attribute for attribute."""
    result = sync(engine, make_settings(), trigger="manual")
    assert result.status == "succeeded"
    assert result.exit_code == 0
    org = simulator.env()["SINCH_ORGANISATION_ID"]
    for source, account in (("sinch", org), ("pingram", "default")):
        expected = expected_rows(simulator, source, account)
        assert len(expected) > 0
        assert loaded_rows(engine, source) == expected
        loaded = counts(result)[source]
        assert loaded["inserted"] == len(expected)
        assert (loaded["updated"], loaded["unchanged"], loaded["removed"]) == (0, 0, 0)
        assert loaded["fetched"] == loaded["inserted"] + loaded["rejected"]


def test_run_records_are_written(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator
) -> None:
    """sync_runs, sync_run_sources and provider_accounts describe the run."""
    result = sync(engine, make_settings(), trigger="manual")
    with engine.connect() as conn:
        run = conn.execute(
            text(
                "SELECT trigger, status, finished_at IS NOT NULL AS done, error "
                "FROM sync_runs WHERE id = :id"
            ),
            {"id": result.run_id},
        ).one()
        sources = conn.execute(
            text(
                "SELECT source, status, fetched, inserted FROM sync_run_sources "
                "WHERE run_id = :id ORDER BY source"
            ),
            {"id": result.run_id},
        ).all()
        accounts = conn.execute(
            text(
                "SELECT source, account_id, shared_number IS NOT NULL AS has_shared, last_run_id "
                "FROM provider_accounts ORDER BY source"
            )
        ).all()
    assert tuple(run) == ("manual", "succeeded", True, None)
    per_source = counts(result)
    assert [tuple(r) for r in sources] == [
        (
            "pingram",
            "succeeded",
            per_source["pingram"]["fetched"],
            per_source["pingram"]["inserted"],
        ),
        ("sinch", "succeeded", per_source["sinch"]["fetched"], per_source["sinch"]["inserted"]),
    ]
    org = simulator.env()["SINCH_ORGANISATION_ID"]
    assert [tuple(a) for a in accounts] == [
        ("pingram", "default", True, result.run_id),
        ("sinch", org, False, result.run_id),
    ]


def test_the_bulk_load_threshold_setting_reaches_the_loader(
    engine: Engine, make_settings: SettingsFactory
) -> None:
    """NUMBERS_ETL_BULK_LOAD_MIN_ROWS=1 (below the 50,000 default) rebuilds the empty tables'
    indexes on a first sync of a few dozen numbers."""
    key_index = text("SELECT 'pk_phone_numbers'::regclass::oid")
    with engine.connect() as conn:
        before = conn.execute(key_index).scalar()

    result = sync(engine, make_settings(NUMBERS_ETL_BULK_LOAD_MIN_ROWS="1"))

    with engine.connect() as conn:
        assert conn.execute(key_index).scalar() != before
    assert result.status == "succeeded"


def test_second_sync_of_the_same_data_changes_nothing(
    engine: Engine, make_settings: SettingsFactory
) -> None:
    """Re-syncing an unchanged listing rewrites zero rows: same xmin, same updated_at."""
    settings = make_settings()
    sync(engine, settings)
    snapshot = "SELECT e164, xmin::text, updated_at FROM phone_numbers ORDER BY 1"
    with engine.connect() as conn:
        before = conn.execute(text(snapshot)).all()
    again = sync(engine, settings)
    with engine.connect() as conn:
        after = conn.execute(text(snapshot)).all()
        versions = conn.execute(text("SELECT count(*) FROM phone_number_versions")).scalar()
    assert after == before
    assert versions == len(before)
    for loaded in counts(again).values():
        assert (loaded["inserted"], loaded["updated"], loaded["removed"]) == (0, 0, 0)
        assert loaded["unchanged"] == loaded["fetched"] - loaded["rejected"]


def test_a_changed_listing_updates_only_changed_rows_and_keeps_history(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator
) -> None:
    """A new revision of the data updates exactly the changed rows and versions them."""
    settings = make_settings()
    first = sync(engine, settings)
    simulator.set_dataset(revision=1)
    second = sync(engine, settings)
    org = simulator.env()["SINCH_ORGANISATION_ID"]
    for source, account in (("sinch", org), ("pingram", "default")):
        assert loaded_rows(engine, source) == expected_rows(simulator, source, account)
    updated = sum(c["updated"] for c in counts(second).values())
    assert updated > 0
    with engine.connect() as conn:
        closed = conn.execute(
            text("SELECT count(*) FROM phone_number_versions WHERE valid_to = :t"),
            {"t": second.run_at},
        ).scalar()
        opened = conn.execute(
            text("SELECT count(*) FROM phone_number_versions WHERE valid_from = :t"),
            {"t": second.run_at},
        ).scalar()
        closed_from_first = conn.execute(
            text(
                "SELECT count(*) FROM phone_number_versions"
                " WHERE valid_from = :first AND valid_to = :second"
            ),
            {"first": first.run_at, "second": second.run_at},
        ).scalar()
    assert closed == opened == closed_from_first == updated


def test_a_failed_source_changes_nothing_and_the_others_load(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator
) -> None:
    """Pingram failing for good makes the run partial, loads Sinch, and leaves Pingram as it was."""
    settings = make_settings(NUMBERS_ETL_HTTP_MAX_ATTEMPTS="2")
    sync(engine, settings)
    before = loaded_rows(engine, "pingram")
    simulator.set_dataset(revision=1)
    simulator.faults.add("pingram.list", Fault(status=500), Fault(status=500))
    result = sync(engine, settings)
    assert result.status == "partial"
    assert result.exit_code == 1
    failed = [o for o in result.outcomes if o.status == "failed"]
    assert [o.source for o in failed] == ["pingram"]
    assert loaded_rows(engine, "pingram") == before
    with engine.connect() as conn:
        status = conn.execute(
            text(
                "SELECT status, error IS NOT NULL FROM sync_run_sources "
                "WHERE run_id = :id AND source = 'pingram'"
            ),
            {"id": result.run_id},
        ).one()
    assert tuple(status) == ("failed", True)


def test_a_truncated_body_loads_nothing_for_that_source(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator
) -> None:
    """A listing cut off mid-body fails its source and keeps the last good state."""
    settings = make_settings()
    sync(engine, settings)
    before = loaded_rows(engine, "sinch")
    simulator.set_dataset(revision=1)
    simulator.faults.add("sinch.numbers", Fault(truncate=True))
    result = sync(engine, settings)
    sinch = next(o for o in result.outcomes if o.source == "sinch")
    assert sinch.status == "failed"
    assert loaded_rows(engine, "sinch") == before


def test_an_empty_listing_is_refused_by_the_mass_removal_guard(
    engine: Engine, make_settings: SettingsFactory, simulator: Simulator
) -> None:
    """An empty listing for an account with numbers removes nothing unless allowed."""
    settings = make_settings()
    sync(engine, settings, sources=["pingram"])
    before = loaded_rows(engine, "pingram")
    simulator.faults.add("pingram.list", Fault(empty_listing=True))
    refused = sync(engine, settings, sources=["pingram"])
    assert refused.status == "failed"
    assert "--allow-mass-removal" in (refused.outcomes[0].error or "")
    assert loaded_rows(engine, "pingram") == before
    simulator.faults.add("pingram.list", Fault(empty_listing=True))
    allowed = sync(engine, settings, sources=["pingram"], allow_mass_removal=True)
    assert allowed.status == "succeeded"
    assert counts(allowed)["pingram"]["removed"] == len(before)
    assert loaded_rows(engine, "pingram") == {}


def test_a_run_left_running_by_a_killed_process_is_aborted_by_the_next(
    engine: Engine, make_settings: SettingsFactory
) -> None:
    """A 'running' run with no live sync behind it is marked aborted when the next sync starts."""
    orphan = start_run(engine, trigger="schedule", started_at=datetime(2026, 1, 1, tzinfo=UTC))
    sync(engine, make_settings())
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM sync_runs WHERE id = :id"), {"id": orphan}
        ).scalar()
    assert status == "aborted"


def test_a_second_sync_while_one_runs_is_refused(
    engine: Engine, make_settings: SettingsFactory
) -> None:
    """While the advisory lock is held, sync raises SyncLocked and records nothing."""
    with sync_lock(engine), pytest.raises(SyncLocked, match="another sync is running"):
        sync(engine, make_settings())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sync_runs")).scalar() == 0


def test_freshness_judges_loaded_accounts_and_ignores_failed_lookups() -> None:
    """A source is stale when never loaded or too old; a failed 'unknown' lookup row is ignored."""
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    settings = load_settings(
        SINCH_INSTANCE_ID="i", SINCH_INSTANCE_SECRET="c2VjcmV0", PINGRAM_API_KEY="pingram_sk_x"
    )
    freshness: list[dict[str, object]] = [
        {"source": "sinch", "account_id": "8888123", "last_success_at": now.replace(hour=11)},
        {"source": "sinch", "account_id": "unknown", "last_success_at": None},
    ]
    assert stale_sources(settings, freshness, 7200, clock=lambda: now) == [
        "pingram: no successful sync recorded"
    ]
    assert stale_sources(settings, freshness, 1800, clock=lambda: now) == [
        "sinch/8888123: last success 2026-11-23T11:00:00+00:00 is older than 1800s",
        "pingram: no successful sync recorded",
    ]


def test_secrets_never_reach_the_database(
    engine: Engine, database_url: str, simulator: Simulator, tmp_path: Any
) -> None:
    """After a refused log-in and a refused API key, no table holds the password or the key."""
    password, key = "hunter2-not-the-password", "pingram_sk_wrong_key_123"
    settings = load_settings(
        **{
            **simulator.login_env(),
            "SINCH_PASSWORD": password,
            "PINGRAM_API_KEY": key,
            "NUMBERS_ETL_DATABASE_URL": database_url,
            "NUMBERS_ETL_HOME": str(tmp_path),
        }
    )
    result = sync(engine, settings)
    assert result.status == "failed"
    with engine.connect() as conn:
        dump = conn.execute(
            text(
                "SELECT concat_ws(' ', (SELECT string_agg(t::text, ' ') FROM sync_runs t),"
                " (SELECT string_agg(t::text, ' ') FROM sync_run_sources t),"
                " (SELECT string_agg(t::text, ' ') FROM rejected_records t),"
                " (SELECT string_agg(t::text, ' ') FROM provider_accounts t))"
            )
        ).scalar_one()
    assert "401" in dump or "refused" in dump
    assert password not in dump
    assert key not in dump
