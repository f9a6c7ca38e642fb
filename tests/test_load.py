"""load_listing against a real PostgreSQL: change-only upsert, history, removals, guard."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from etl.db.load import LoadResult, load_listing
from etl.db.runs import start_run
from etl.db.stage import to_json_text, to_json_text_lenient
from etl.errors import MassRemovalRefused
from etl.transform import NumberRow, RawRecord, Rejection

T1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 1, 11, 0, tzinfo=UTC)
T3 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EXPIRES = datetime(2026, 12, 1, tzinfo=UTC)
HALF = Decimal("0.5")

Loader = Callable[..., LoadResult]


def number(e164: str, **attributes: Any) -> NumberRow:
    """A Sinch-like row of account 'org-1' with a few attributes set."""
    defaults: dict[str, Any] = {
        "country_code": "US",
        "capabilities": ("sms", "voice"),
        "cost_amount": Decimal("1.25"),
        "cost_currency": "USD",
        "expires_at": EXPIRES,
    }
    values = {**defaults, **attributes}
    raw = {"number": e164, "cost": {"amount": values["cost_amount"], "currency": "USD"}}
    return NumberRow(source="sinch", account_id="org-1", e164=e164, raw=raw, **values)


def rejection(reason: str, record: Any, e164: str | None = None) -> Rejection:
    """A rejected record of account 'org-1'."""
    return Rejection(source="sinch", account_id="org-1", reason=reason, record=record, e164=e164)


def load_in(
    conn: Connection,
    items: Iterable[NumberRow | Rejection],
    *,
    run_id: int,
    run_at: datetime = T1,
    **options: Any,
) -> LoadResult:
    """A load of sinch/org-1 inside the caller's transaction (the guard at one half)."""
    options.setdefault("max_removal_fraction", HALF)
    return load_listing(
        conn, items, run_id=run_id, source="sinch", account_id="org-1", run_at=run_at, **options
    )


@pytest.fixture
def load(engine: Engine) -> Loader:
    """Load a listing of sinch/org-1 in its own run and transaction, as the pipeline does."""

    def run(items: Iterable[NumberRow | Rejection], run_at: datetime, **options: Any) -> LoadResult:
        run_id = start_run(engine, trigger="manual", started_at=run_at)
        with engine.begin() as conn:
            return load_in(conn, items, run_id=run_id, run_at=run_at, **options)

    return run


def fetch(engine: Engine, query: str) -> list[dict[str, Any]]:
    """Every row of a query, as dicts."""
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(query)).mappings()]


def numbers_state(engine: Engine) -> list[dict[str, Any]]:
    """Key, xmin and timestamps of every phone_numbers row: what a no-op must not change."""
    return fetch(
        engine,
        "SELECT e164, xmin::text AS xmin, first_seen_at, updated_at, removed_at, last_run_id "
        "FROM phone_numbers ORDER BY source, account_id, e164",
    )


def versions(engine: Engine) -> list[tuple[str, Any, datetime, datetime | None]]:
    """(e164, cost_amount, valid_from, valid_to) of every version, in order."""
    rows = fetch(
        engine,
        "SELECT e164, cost_amount, valid_from, valid_to FROM phone_number_versions "
        "ORDER BY e164, valid_from",
    )
    return [(r["e164"], r["cost_amount"], r["valid_from"], r["valid_to"]) for r in rows]


def test_first_load_inserts_rows_with_every_column(engine: Engine, load: Loader) -> None:
    """A new number is inserted with its attributes, run, timestamps, raw and one open version."""
    result = load([number("+14150005550", city="San Francisco", group_id=7)], T1)

    assert result == LoadResult(
        fetched=1, inserted=1, updated=0, unchanged=0, removed=0, rejected=0
    )
    [row] = fetch(engine, "SELECT * FROM phone_numbers")
    assert row == {
        "source": "sinch",
        "account_id": "org-1",
        "e164": "+14150005550",
        "country_code": "US",
        "country": None,
        "city": "San Francisco",
        "area_code": None,
        "capabilities": ["sms", "voice"],
        "group_id": 7,
        "application_key": None,
        "label": None,
        "number_type": None,
        "billing_status": None,
        "registered_at": None,
        "released_at": None,
        "expires_at": EXPIRES,
        "cost_amount": Decimal("1.25"),
        "cost_currency": "USD",
        "first_seen_at": T1,
        "updated_at": T1,
        "removed_at": None,
        "raw": {"number": "+14150005550", "cost": {"amount": 1.25, "currency": "USD"}},
        "last_run_id": 1,
    }
    assert versions(engine) == [("+14150005550", Decimal("1.25"), T1, None)]


def test_unchanged_listing_writes_no_row(engine: Engine, load: Loader) -> None:
    """Loading the same listing again touches no row: same xmin, same updated_at, no version."""
    listing = [number("+14150005550"), number("+14150005551"), number("+14150005552")]
    load(listing, T1)
    before = numbers_state(engine)

    result = load(listing, T2)

    assert result == LoadResult(
        fetched=3, inserted=0, updated=0, unchanged=3, removed=0, rejected=0
    )
    assert numbers_state(engine) == before
    assert len(versions(engine)) == 3


def test_changed_raw_alone_is_not_a_change(engine: Engine, load: Loader) -> None:
    """A record whose normalized attributes are the same is unchanged even if its raw differs."""
    load([number("+14150005550")], T1)
    before = numbers_state(engine)
    changed_raw = dataclasses.replace(number("+14150005550"), raw={"x": 1})

    result = load([changed_raw], T2)

    assert (result.unchanged, result.updated) == (1, 0)
    assert numbers_state(engine) == before


def test_one_changed_attribute_updates_one_row_and_opens_a_version(
    engine: Engine, load: Loader
) -> None:
    """A new price rewrites that row only, closes its version at the run time and opens another."""
    load([number("+14150005550"), number("+14150005551")], T1)
    untouched = numbers_state(engine)[0]

    result = load([number("+14150005550"), number("+14150005551", cost_amount=Decimal("2"))], T2)

    assert result == LoadResult(
        fetched=2, inserted=0, updated=1, unchanged=1, removed=0, rejected=0
    )
    after = numbers_state(engine)
    assert after[0] == untouched
    assert (after[1]["first_seen_at"], after[1]["updated_at"], after[1]["last_run_id"]) == (
        T1,
        T2,
        2,
    )
    assert versions(engine) == [
        ("+14150005550", Decimal("1.25"), T1, None),
        ("+14150005551", Decimal("1.25"), T1, T2),
        ("+14150005551", Decimal("2"), T2, None),
    ]
    [new_version] = fetch(
        engine, "SELECT run_id FROM phone_number_versions WHERE valid_from = '2026-11-01 11:00+00'"
    )
    assert new_version == {"run_id": 2}


def test_null_to_value_is_a_change(engine: Engine, load: Loader) -> None:
    """An attribute going from NULL to a value (or back) counts as a change."""
    load([number("+14150005550", label=None)], T1)

    assert load([number("+14150005550", label="support")], T2).updated == 1
    assert load([number("+14150005550", label=None)], T3).updated == 1


def test_absent_number_is_removed_and_its_version_closed(engine: Engine, load: Loader) -> None:
    """A number missing from a complete listing gets removed_at and a closed version."""
    load([number("+14150005550"), number("+14150005551"), number("+14150005552")], T1)

    result = load([number("+14150005550"), number("+14150005551")], T2)

    assert result == LoadResult(
        fetched=2, inserted=0, updated=0, unchanged=2, removed=1, rejected=0
    )
    assert fetch(
        engine, "SELECT e164, removed_at, updated_at FROM phone_numbers ORDER BY e164"
    ) == [
        {"e164": "+14150005550", "removed_at": None, "updated_at": T1},
        {"e164": "+14150005551", "removed_at": None, "updated_at": T1},
        {"e164": "+14150005552", "removed_at": T2, "updated_at": T2},
    ]
    assert versions(engine)[2] == ("+14150005552", Decimal("1.25"), T1, T2)


def test_removed_number_keeps_its_first_removed_at(engine: Engine, load: Loader) -> None:
    """A number absent from two listings in a row keeps the removed_at of the first."""
    load([number("+14150005550"), number("+14150005551")], T1)
    load([number("+14150005550")], T2)
    before = numbers_state(engine)

    result = load([number("+14150005550")], T3)

    assert (result.removed, result.unchanged) == (0, 1)
    assert numbers_state(engine) == before
    assert before[1]["removed_at"] == T2


def test_reappearing_number_is_restored_with_a_new_version(engine: Engine, load: Loader) -> None:
    """A removed number that comes back gets removed_at NULL and a new open version."""
    load([number("+14150005550"), number("+14150005551")], T1)
    load([number("+14150005550")], T2)

    result = load([number("+14150005550"), number("+14150005551")], T3)

    assert result == LoadResult(
        fetched=2, inserted=0, updated=1, unchanged=1, removed=0, rejected=0
    )
    assert fetch(
        engine,
        "SELECT first_seen_at, updated_at, removed_at FROM phone_numbers "
        "WHERE e164 = '+14150005551'",
    ) == [{"first_seen_at": T1, "updated_at": T3, "removed_at": None}]
    assert versions(engine)[1:] == [
        ("+14150005551", Decimal("1.25"), T1, T2),
        ("+14150005551", Decimal("1.25"), T3, None),
    ]


def test_duplicate_number_loads_first_copy_and_rejects_the_others(
    engine: Engine, load: Loader
) -> None:
    """The same e164 three times loads the first copy once; the two others are 'duplicate'."""
    listing = [
        number("+14150005550", label="first"),
        number("+14150005551"),
        number("+14150005550", label="second"),
        number("+14150005550", label="third"),
    ]

    result = load(listing, T1)

    assert result == LoadResult(
        fetched=4, inserted=2, updated=0, unchanged=0, removed=0, rejected=2
    )
    assert fetch(engine, "SELECT e164, label FROM phone_numbers ORDER BY e164") == [
        {"e164": "+14150005550", "label": "first"},
        {"e164": "+14150005551", "label": None},
    ]
    rejected = fetch(
        engine,
        "SELECT run_id, e164, reason, record->>'number' AS number, created_at "
        "FROM rejected_records ORDER BY id",
    )
    assert (
        rejected
        == [
            {
                "run_id": 1,
                "e164": "+14150005550",
                "reason": "duplicate",
                "number": "+14150005550",
                "created_at": T1,
            },
        ]
        * 2
    )


def test_duplicate_of_an_existing_number_updates_it_once(engine: Engine, load: Loader) -> None:
    """A changed number listed twice is updated once from its first copy, never erroring."""
    load([number("+14150005550")], T1)

    result = load([number("+14150005550", label="new"), number("+14150005550", label="newer")], T2)

    assert (result.updated, result.rejected) == (1, 1)
    assert fetch(engine, "SELECT label FROM phone_numbers") == [{"label": "new"}]


def test_rejected_record_with_number_keeps_it_from_removal(engine: Engine, load: Loader) -> None:
    """A number whose record was rejected this time stays active and untouched."""
    load([number("+14150005550"), number("+14150005551")], T1)
    before = numbers_state(engine)

    result = load(
        [number("+14150005550"), rejection("expires_at: not a date", {"n": 1}, "+14150005551")],
        T2,
    )

    assert result == LoadResult(
        fetched=2, inserted=0, updated=0, unchanged=1, removed=0, rejected=1
    )
    assert numbers_state(engine) == before


def test_rejections_are_recorded_with_reason_and_record(engine: Engine, load: Loader) -> None:
    """Each rejection becomes a rejected_records row with its reason and the record as jsonb."""
    result = load(
        [
            rejection("e164: not a possible number", {"number": "12", "cost": Decimal("0.10")}),
            number("+14150005550"),
            rejection("record: not an object", b"\x00bytes"),
        ],
        T1,
    )

    assert (result.fetched, result.inserted, result.rejected) == (3, 1, 2)
    rows = fetch(
        engine,
        "SELECT run_id, source, account_id, e164, reason, record::text AS record, "
        "created_at FROM rejected_records ORDER BY id",
    )
    assert rows == [
        {
            "run_id": 1,
            "source": "sinch",
            "account_id": "org-1",
            "e164": None,
            "reason": "e164: not a possible number",
            "record": '{"cost": 0.10, "number": "12"}',
            "created_at": T1,
        },
        {
            "run_id": 1,
            "source": "sinch",
            "account_id": "org-1",
            "e164": None,
            "reason": "record: not an object",
            "record": "\"b'\\\\x00bytes'\"",
            "created_at": T1,
        },
    ]


def test_mass_removal_is_refused_and_changes_nothing(engine: Engine, load: Loader) -> None:
    """Removing 3 of 4 active numbers with a 0.5 limit raises and writes nothing at all."""
    four = [number(f"+1415000555{i}") for i in range(4)]
    load(four, T1)
    before = numbers_state(engine)

    with pytest.raises(MassRemovalRefused) as refused:
        load([four[0], rejection("bad", {}), number("+14150009999")], T2)

    assert str(refused.value) == (
        "sinch/org-1: the listing would mark 3 of 4 active numbers removed (75%), more than "
        "NUMBERS_ETL_MAX_REMOVAL_FRACTION=0.5; nothing was changed. If the numbers really "
        "are gone, sync again with --allow-mass-removal"
    )
    assert numbers_state(engine) == before
    assert fetch(engine, "SELECT count(*) AS n FROM rejected_records") == [{"n": 0}]
    assert len(versions(engine)) == 4


def test_mass_removal_goes_through_when_allowed(engine: Engine, load: Loader) -> None:
    """allow_mass_removal lets an empty listing remove every number of the account."""
    load([number("+14150005550"), number("+14150005551")], T1)

    result = load([], T2, allow_mass_removal=True)

    assert result == LoadResult(
        fetched=0, inserted=0, updated=0, unchanged=0, removed=2, rejected=0
    )
    assert fetch(engine, "SELECT count(*) AS n FROM active_numbers") == [{"n": 0}]


def test_removal_of_exactly_the_fraction_is_allowed(engine: Engine, load: Loader) -> None:
    """Removing exactly max_removal_fraction of the active numbers is not 'more than' it."""
    load([number("+14150005550"), number("+14150005551")], T1)

    assert load([number("+14150005550")], T2).removed == 1


def test_empty_listing_of_an_empty_account_is_fine(engine: Engine, load: Loader) -> None:
    """With no active numbers the guard has nothing to protect."""
    assert load([], T1, max_removal_fraction=Decimal(0)) == LoadResult(0, 0, 0, 0, 0, 0)


def test_other_accounts_are_left_alone(engine: Engine, load: Loader) -> None:
    """A listing of one account never removes or touches the numbers of another."""
    other = NumberRow(source="pingram", account_id="default", e164="+14150005550", raw={})
    run_id = start_run(engine, trigger="manual", started_at=T1)
    with engine.begin() as conn:
        load_listing(
            conn,
            [other],
            run_id=run_id,
            source="pingram",
            account_id="default",
            run_at=T1,
            max_removal_fraction=HALF,
        )
    before = numbers_state(engine)

    assert load([number("+14150005550")], T2).inserted == 1
    assert load([number("+14150005551")], T3, allow_mass_removal=True).removed == 1
    assert numbers_state(engine)[0] == before[0]


def test_decimal_amount_is_stored_exactly(engine: Engine, load: Loader) -> None:
    """0.10 stays 0.10 in cost_amount and in raw, never 0.1 or a float."""
    load([number("+14150005550", cost_amount=Decimal("0.10"))], T1)

    assert fetch(
        engine,
        "SELECT cost_amount::text AS amount, raw->'cost'->>'amount' AS raw_amount, "
        "raw::text AS raw FROM phone_numbers",
    ) == [
        {
            "amount": "0.10",
            "raw_amount": "0.10",
            "raw": '{"cost": {"amount": 0.10, "currency": "USD"}, "number": "+14150005550"}',
        }
    ]


def test_empty_and_missing_capabilities_differ(engine: Engine, load: Loader) -> None:
    """An empty capabilities tuple is stored as an empty array, None as NULL."""
    load([number("+14150005550", capabilities=()), number("+14150005551", capabilities=None)], T1)

    assert fetch(engine, "SELECT capabilities FROM phone_numbers ORDER BY e164") == [
        {"capabilities": []},
        {"capabilities": None},
    ]


def test_iterator_failing_midway_leaves_previous_state(engine: Engine, load: Loader) -> None:
    """A listing that raises halfway (a truncated body) rolls back: the old state is intact."""
    load([number("+14150005550"), number("+14150005551")], T1)
    before = (numbers_state(engine), versions(engine))

    def truncated() -> Iterator[NumberRow | Rejection]:
        yield number("+14150005550", label="changed")
        yield rejection("bad", {}, None)
        raise ConnectionError("body ended early")

    with pytest.raises(ConnectionError, match="body ended early"):
        load(truncated(), T2)

    assert (numbers_state(engine), versions(engine)) == before
    assert fetch(engine, "SELECT count(*) AS n FROM rejected_records") == [{"n": 0}]


def test_two_loads_in_one_transaction(engine: Engine) -> None:
    """Two accounts can be loaded in the same transaction: the staging tables do not clash."""
    run_id = start_run(engine, trigger="manual", started_at=T1)
    with engine.begin() as conn:
        for account in ("org-1", "org-2"):
            row = NumberRow(source="sinch", account_id=account, e164="+14150005550", raw=None)
            load_listing(
                conn,
                [row],
                run_id=run_id,
                source="sinch",
                account_id=account,
                run_at=T1,
                max_removal_fraction=HALF,
            )

    assert fetch(engine, "SELECT account_id, raw FROM phone_numbers ORDER BY 1") == [
        {"account_id": "org-1", "raw": None},
        {"account_id": "org-2", "raw": None},
    ]


def indexes(engine: Engine) -> dict[str, tuple[int, str, str | None]]:
    """Each index of the two tables a load inserts into: oid, definition, constraint's."""
    rows = fetch(
        engine,
        "SELECT i.indexrelid::regclass::text AS name, i.indexrelid::int8 AS oid,"
        " pg_get_indexdef(i.indexrelid) AS definition,"
        " c.contype::text || ' ' || pg_get_constraintdef(c.oid) AS constraint_definition"
        " FROM pg_index AS i LEFT JOIN pg_constraint AS c"
        " ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid"
        " WHERE i.indrelid IN ('phone_numbers'::regclass, 'phone_number_versions'::regclass)",
    )
    return {r["name"]: (r["oid"], r["definition"], r["constraint_definition"]) for r in rows}


def definitions(found: dict[str, tuple[int, str, str | None]]) -> dict[str, tuple[Any, ...]]:
    """`indexes` without the oids: what must survive a rebuild."""
    return {name: rest for name, (_, *rest) in found.items()}


def test_first_large_load_builds_the_indexes_after_the_rows(engine: Engine, load: Loader) -> None:
    """Into empty tables, a large load drops the indexes and builds the same ones again."""
    before = indexes(engine)
    assert len(before) == 5
    assert before["pk_phone_numbers"][2] == "p PRIMARY KEY (source, account_id, e164)"

    numbers = [number("+14150005550"), number("+14150005551"), number("+14150005552")]
    load(numbers, T1, bulk_load_min_rows=3)

    after = indexes(engine)
    assert definitions(after) == definitions(before)
    assert all(after[name][0] != oid for name, (oid, *_) in before.items())  # built anew
    assert [v[0] for v in versions(engine)] == ["+14150005550", "+14150005551", "+14150005552"]
    copy_a_row = text("INSERT INTO phone_numbers SELECT * FROM phone_numbers LIMIT 1")
    with pytest.raises(IntegrityError, match="pk_phone_numbers"), engine.begin() as conn:
        conn.execute(copy_a_row)  # the rebuilt primary key is enforced


def test_load_below_the_threshold_keeps_the_indexes(engine: Engine, load: Loader) -> None:
    """Fewer new numbers than the threshold (or a threshold of 0) change no index."""
    before = indexes(engine)

    load([number("+14150005550"), number("+14150005551")], T1, bulk_load_min_rows=3)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE phone_numbers, phone_number_versions"))
    load([number("+14150005550"), number("+14150005551")], T2, bulk_load_min_rows=0)

    assert indexes(engine) == before


def test_large_load_into_a_table_with_rows_keeps_its_indexes(engine: Engine, load: Loader) -> None:
    """Once a table has rows, readers may be using it: its indexes are never dropped."""
    load([number("+14150005550")], T1)
    before = indexes(engine)

    numbers = [number("+14150005550"), number("+14150005551"), number("+14150005552")]
    load(numbers, T2, bulk_load_min_rows=1)

    assert indexes(engine) == before


def test_large_first_load_does_not_wait_for_a_reader_of_the_empty_table(engine: Engine) -> None:
    """An open transaction that read the table keeps its lock: the load keeps the indexes."""
    before = indexes(engine)
    run_id = start_run(engine, trigger="manual", started_at=T1)

    with engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM phone_numbers"))  # idle in transaction now
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))  # were it to wait: 20 s, then fail
            numbers = [number("+14150005550"), number("+14150005551")]
            started = time.monotonic()
            result = load_in(conn, numbers, run_id=run_id, bulk_load_min_rows=1)
            waited = time.monotonic() - started
        reader.rollback()

    assert result.inserted == 2
    assert waited < 10
    after = indexes(engine)
    assert {n: after[n] for n in ("pk_phone_numbers", "ix_phone_numbers_expires_at")} == {
        n: before[n] for n in ("pk_phone_numbers", "ix_phone_numbers_expires_at")
    }
    assert after["uq_phone_number_versions_open"] != before["uq_phone_number_versions_open"]


@pytest.mark.parametrize(
    "setup",
    [
        "COMMENT ON INDEX ix_phone_numbers_expires_at IS 'for the expiry report'",
        "COMMENT ON CONSTRAINT pk_phone_numbers ON phone_numbers IS 'the key'",
        "ALTER TABLE phone_numbers CLUSTER ON pk_phone_numbers",
        "ALTER TABLE phone_numbers REPLICA IDENTITY USING INDEX pk_phone_numbers",
        "CREATE INDEX ix_city ON phone_numbers (lower(city));"
        " ALTER INDEX ix_city ALTER COLUMN 1 SET STATISTICS 1000",
        "CREATE TABLE number_notes (source text, account_id text, e164 text,"
        " FOREIGN KEY (source, account_id, e164) REFERENCES phone_numbers)",
        "CREATE VIEW number_countries AS SELECT source, account_id, e164, country_code"
        " FROM phone_numbers GROUP BY source, account_id, e164",  # depends on the key
        "ALTER TABLE phone_numbers ADD CONSTRAINT fk_run FOREIGN KEY (last_run_id)"
        " REFERENCES sync_runs DEFERRABLE INITIALLY DEFERRED",  # pending trigger events
    ],
    ids=[
        "index-comment",
        "constraint-comment",
        "cluster",
        "replica-identity",
        "statistics-target",
        "foreign-key",
        "dependent-view",
        "deferrable-trigger",
    ],
)
def test_indexes_that_a_rebuild_would_change_or_fail_on_are_kept(
    engine: Engine, load: Loader, setup: str
) -> None:
    """What rebuilding from the definitions would lose or be refused keeps the indexes."""
    with engine.begin() as conn:
        conn.execute(text(setup))
    before = indexes(engine)

    load([number("+14150005550"), number("+14150005551")], T1, bulk_load_min_rows=1)

    after = indexes(engine)
    assert {n: after[n] for n in ("pk_phone_numbers", "ix_phone_numbers_expires_at")} == {
        n: before[n] for n in ("pk_phone_numbers", "ix_phone_numbers_expires_at")
    }
    assert fetch(engine, "SELECT count(*) AS n FROM phone_numbers") == [{"n": 2}]


def test_a_role_that_does_not_own_the_tables_loads_with_their_indexes(engine: Engine) -> None:
    """DDL needs the owner's role; a sync may run with plain privileges: the indexes stay."""
    role = f"numbers_loader_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role}"))
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    before = indexes(engine)
    run_id = start_run(engine, trigger="manual", started_at=T1)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            numbers = [number("+14150005550"), number("+14150005551")]
            result = load_in(conn, numbers, run_id=run_id, bulk_load_min_rows=1)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))

    assert result.inserted == 2
    assert indexes(engine) == before


def test_failed_load_brings_the_dropped_indexes_back(engine: Engine) -> None:
    """The indexes are dropped inside the load's transaction: a rollback restores them."""
    before = indexes(engine)
    run_id = start_run(engine, trigger="manual", started_at=T1)

    def load_then_fail() -> None:
        with engine.begin() as conn:
            load_in(conn, [number("+14150005550")], run_id=run_id, bulk_load_min_rows=1)
            rebuilt = conn.execute(text("SELECT 'pk_phone_numbers'::regclass::oid::int8"))
            assert rebuilt.scalar_one() != before["pk_phone_numbers"][0]  # not yet committed
            raise RuntimeError("after the load")

    with pytest.raises(RuntimeError, match="after the load"):
        load_then_fail()

    assert indexes(engine) == before
    assert fetch(engine, "SELECT count(*) AS n FROM phone_numbers") == [{"n": 0}]


def test_item_of_another_account_is_refused(engine: Engine, load: Loader) -> None:
    """Feeding a row of another account is a programmer error, and nothing is loaded."""
    stray = NumberRow(source="sinch", account_id="org-2", e164="+14150005550", raw={})

    with pytest.raises(ValueError, match="item 1 is for sinch/org-2, not sinch/org-1"):
        load([stray], T1)


def test_many_rows_reload_without_writes(engine: Engine, load: Loader) -> None:
    """A 5,000-number listing loads, then reloads with 0 rows written and 50 changed."""

    def listing(changed: int = 0) -> Iterator[NumberRow]:
        for i in range(5000):
            price = Decimal("2.00") if i < changed else Decimal("1.00")
            yield number(f"+1415{i:07d}", cost_amount=price)

    assert load(listing(), T1).inserted == 5000
    before = numbers_state(engine)
    assert load(listing(), T2).unchanged == 5000
    assert numbers_state(engine) == before
    assert load(listing(changed=50), T3) == LoadResult(5000, 0, 50, 4950, 0, 0)
    assert fetch(engine, "SELECT count(*) AS n FROM phone_number_versions") == [{"n": 5050}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": Decimal("0.10")}, '{"a":0.10}', id="decimal-keeps-scale"),
        pytest.param(Decimal("1E+3"), "1E+3", id="decimal-exponent"),
        pytest.param([1, True, False, None, "é\n"], '[1,true,false,null,"é\\n"]', id="scalars"),
        pytest.param(("a", ("b",)), '["a",["b"]]', id="tuples-are-arrays"),
        pytest.param({"k": "a\x00b"}, '{"k":"a\ufffdb"}', id="nul-is-replaced"),
        pytest.param("\\u0000", '"\\\\u0000"', id="backslash-u-is-kept"),
        pytest.param(1.5, "1.5", id="float"),
    ],
)
def test_to_json_text(value: Any, expected: str) -> None:
    """to_json_text writes exact JSON, Decimals as their literal digits."""
    assert to_json_text(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(Decimal("NaN"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param({1: "a"}, id="int-key"),
        pytest.param({"a"}, id="set"),
    ],
)
def test_to_json_text_refuses_what_json_cannot_say(value: Any) -> None:
    """Non-finite numbers, non-str keys and other types are not JSON; lenient makes a string."""
    with pytest.raises((TypeError, ValueError)):
        to_json_text(value)
    assert to_json_text_lenient(value) == to_json_text(str(value))


def test_raw_is_stored_from_the_text_the_record_was_parsed_from(
    load: Loader, engine: Engine
) -> None:
    """A RawRecord's json_text becomes `raw` as sent (exact amount), not a re-serialization."""
    record = RawRecord({"number": 14150005550, "cost": {"amount": Decimal("1.50")}})
    record.json_text = '{"number": 14150005550, "cost": {"amount": 1.50}, "extra": "kept"}'
    row = dataclasses.replace(number("+14150005550"), raw=record)
    load([row], T1)
    stored = fetch(engine, "SELECT raw::text AS raw FROM phone_numbers")
    assert stored == [{"raw": '{"cost": {"amount": 1.50}, "extra": "kept", "number": 14150005550}'}]


def test_raw_text_with_an_escaped_nul_falls_back_to_a_storable_copy(
    load: Loader, engine: Engine
) -> None:
    """jsonb refuses \\u0000, so such a record is re-serialized with U+FFFD instead of failing."""
    record = RawRecord({"number": 14150005550, "city": "A\x00B"})
    record.json_text = '{"number": 14150005550, "city": "A\\u0000B"}'
    row = dataclasses.replace(number("+14150005550"), raw=record)
    load([row], T1)
    stored = fetch(engine, "SELECT raw->>'city' AS city FROM phone_numbers")
    assert stored == [{"city": "A\ufffdB"}]


def test_raw_text_with_a_lone_surrogate_escape_does_not_fail_the_load(
    load: Loader, engine: Engine
) -> None:
    """jsonb refuses a lone \\ud83d escape: the record is re-serialized and the load succeeds."""
    record = RawRecord({"number": 14150005550, "note": "x\ud83dy"})
    record.json_text = '{"number": 14150005550, "note": "x\\ud83dy"}'
    row = dataclasses.replace(number("+14150005550"), raw=record)
    result = load([row], T1)
    assert result.inserted == 1
    stored = fetch(engine, "SELECT raw->>'note' AS note FROM phone_numbers")
    assert stored == [{"note": "x?y"}]
