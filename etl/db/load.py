"""Load one complete listing of a (source, account) into `phone_numbers` (SPEC §5).

`load_listing` is the single entry point. It runs inside the caller's
transaction and never commits, so a listing is loaded entirely or not at all:

1. stage: the items are streamed into a temporary table by binary COPY
   (`etl.db.stage`), then ANALYZEd so the planner sees its real size;
   `Unchanged` items (elements whose text digest is an active number's, in
   `phone_number_digests`) are matched by digest, which gives their e164;
   every one must match (else `DigestMismatch`, nothing written);
2. duplicates: a repeated e164 keeps its first copy (lowest ordinal), and
   every later copy becomes a `duplicate` rejection;
3. guard: active numbers absent from the listing are counted (a rejection with
   an e164 counts as present); too many → `MassRemovalRefused`, nothing written;
4. rejections go to `rejected_records`;
5. diff: the staged rows are compared with `phone_numbers` in one hash join and
   only new, changed (any attribute IS DISTINCT FROM) and reappearing numbers
   are kept; unchanged rows are never written (no new tuple, same xmin). An
   account with no row yet skips the comparison: every valid row is new;
6. history: the open versions of changed numbers are closed at `run_at`;
7. write: new numbers are inserted, changed and reappearing ones updated by
   key, and each gets a new open version in the same statement (a large
   insert into an empty table builds its indexes afterwards); every
   normalized number's digest becomes its element's (a table of its own, so
   that a new digest alone never writes a `phone_numbers` row);
8. removals: absent active numbers get `removed_at = run_at` and their open
   version is closed.

Every timestamp written is `run_at`; nothing reads the database clock.
`cost_amount` equality is numeric equality, so `0.1` → `0.10` is not a change.
"""

from __future__ import annotations

import logging
import sys
from array import array
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from etl.db.stage import STAGE_TABLE, create_stage_table, stage_listing
from etl.errors import DigestMismatch, MassRemovalRefused
from etl.transform import ATTRIBUTE_COLUMNS, LoadItem
from etl.transform.digest import DigestSet

log = logging.getLogger(__name__)

DIFF_TABLE = "_numbers_diff"
GONE_TABLE = "_numbers_gone"
SAME_TABLE = "_numbers_same"  # unchanged elements that may be duplicates: ordinal, e164
DUPS_TABLE = "_numbers_dups"
STALE_TABLE = "_digests_stale"  # digest rows that no unchanged element matched
# Memory for the hash joins and aggregates of one load (SET LOCAL, this transaction only).
LOAD_WORK_MEM = "256MB"
# ANALYZE the target tables after writing more rows than this (or 10% of the account).
ANALYZE_MIN_ROWS = 10_000
# Inserting at least this many numbers into an empty table (a first load) drops its
# indexes and builds them afterwards: one sort per index instead of a btree descent
# per row (17 s against 42 s for a million numbers and their versions). The default
# of NUMBERS_ETL_BULK_LOAD_MIN_ROWS; 0 turns it off.
BULK_LOAD_MIN_ROWS = 50_000
BULK_LOAD_TABLES = ("phone_numbers", "phone_number_versions")  # what _INSERT_NEW writes

_ATTRS = ", ".join(ATTRIBUTE_COLUMNS)
_S_ATTRS = ", ".join(f"s.{c}" for c in ATTRIBUTE_COLUMNS)
_P_ATTRS = ", ".join(f"p.{c}" for c in ATTRIBUTE_COLUMNS)
_KEY = "p.source = :source AND p.account_id = :account_id"
_DKEY = "d.source = :source AND d.account_id = :account_id"
_VKEY = "v.source = :source AND v.account_id = :account_id"

# Staged rows that were normalized and not rejected. A staged Unchanged element is the
# other kind of valid row: no e164 and no reason, only its digest.
_NORMALIZED = "s.reason IS NULL AND s.e164 IS NOT NULL"

# One pass over the account's digests: match each unchanged element to the number whose
# digest it has, find the digested numbers that nothing in the listing names, and note
# the digest rows nothing matched (by ctid: this transaction alone writes the table).
# Unchanged elements go to SAME_TABLE only if they can be duplicates: {same} keeps
# every one when an element repeats, else only those whose e164 a normalized one has.
_MATCH_UNCHANGED_AND_FIND_GONE = f"""
WITH joined AS MATERIALIZED (
    SELECT u.ord, a.e164, a.ctid AS digest_row
    FROM (
        SELECT s.ord, s.raw_digest FROM {STAGE_TABLE} AS s
        WHERE s.e164 IS NULL AND s.reason IS NULL
    ) AS u
    FULL JOIN (
        SELECT d.ctid, d.e164, d.raw_digest FROM phone_number_digests AS d WHERE {_DKEY}
    ) AS a ON a.raw_digest = u.raw_digest
), stale AS (
    INSERT INTO {STALE_TABLE} (digest_row) SELECT j.digest_row FROM joined AS j WHERE j.ord IS NULL
), same AS (
    INSERT INTO {SAME_TABLE} (ord, e164)
    SELECT j.ord, j.e164 FROM joined AS j WHERE j.ord IS NOT NULL AND j.e164 IS NOT NULL {{same}}
), gone AS (
    INSERT INTO {GONE_TABLE} (e164)
    SELECT j.e164 FROM joined AS j
    WHERE j.ord IS NULL AND NOT EXISTS (SELECT FROM {STAGE_TABLE} AS s WHERE s.e164 = j.e164)
    RETURNING 1
)
SELECT count(*) FILTER (WHERE j.ord IS NOT NULL AND j.e164 IS NULL) AS mismatched,
       count(*) FILTER (WHERE j.ord IS NULL) AS stale,
       (SELECT count(*) FROM gone) AS removed
FROM joined AS j
"""
# Active numbers, how many of them have a digest (all but those loaded before 0002), and
# whether the account has any row at all (else this is its first load).
_COUNT_ACTIVE = f"""
SELECT (SELECT count(*) FROM phone_numbers AS p WHERE {_KEY} AND p.removed_at IS NULL),
       (SELECT count(*) FROM phone_number_digests AS d WHERE {_DKEY}),
       EXISTS (SELECT FROM phone_numbers AS p WHERE {_KEY})
"""
# Active numbers without a digest that nothing in the listing names.
_FIND_UNDIGESTED_GONE = f"""
INSERT INTO {GONE_TABLE} (e164)
SELECT p.e164 FROM phone_numbers AS p
WHERE {_KEY} AND p.removed_at IS NULL
  AND NOT EXISTS (SELECT FROM phone_number_digests AS d WHERE {_DKEY} AND d.e164 = p.e164)
  AND NOT EXISTS (SELECT FROM {STAGE_TABLE} AS s WHERE s.e164 = p.e164)
"""
# Each number's digest becomes that of the element just read, if it was normalized (and
# valid), whether or not an attribute changed; digests that no element matched go.
_FORGET_STALE_DIGESTS = f"""
DELETE FROM phone_number_digests AS d
WHERE d.ctid = ANY (ARRAY(SELECT t.digest_row FROM {STALE_TABLE} AS t))
"""  # a TID scan: a join on ctid hashed every digest row (0.66 s against 0.2 for 10,000)
_RECORD_DIGESTS = f"""
INSERT INTO phone_number_digests (source, account_id, e164, raw_digest)
SELECT :source, :account_id, s.e164, s.raw_digest FROM {STAGE_TABLE} AS s
WHERE {_NORMALIZED} AND s.raw_digest IS NOT NULL
"""
# An unchanged element that repeats an earlier, normalized, copy of its number matched a
# digest row: that row goes too, or the number would have two.
_FORGET_DIGESTS_OF_UNCHANGED_DUPLICATES = f"""
DELETE FROM phone_number_digests AS d USING {SAME_TABLE} AS m
JOIN {DUPS_TABLE} AS x ON x.ord = m.ord
WHERE {_DKEY} AND d.e164 = m.e164
  AND EXISTS (SELECT FROM {STAGE_TABLE} AS s WHERE s.e164 = m.e164 AND {_NORMALIZED})
"""

# Every later copy of an e164, among normalized and unchanged elements alike.
_FIND_DUPLICATES = f"""
INSERT INTO {DUPS_TABLE} (ord, e164)
WITH listed AS (
    SELECT s.ord, s.e164 FROM {STAGE_TABLE} AS s WHERE {_NORMALIZED}
    UNION ALL
    SELECT m.ord, m.e164 FROM {SAME_TABLE} AS m
)
SELECT l.ord, l.e164 FROM listed AS l
JOIN (SELECT e164, min(ord) AS first_ord FROM listed GROUP BY e164 HAVING count(*) > 1) AS k
  ON k.e164 = l.e164 AND l.ord > k.first_ord
"""
_SAME_NAMED_BY_NORMALIZED = (
    f"AND j.e164 IN (SELECT s.e164 FROM {STAGE_TABLE} AS s WHERE {_NORMALIZED})"
)
_MARK_DUPLICATES = f"""
UPDATE {STAGE_TABLE} AS s SET reason = 'duplicate'
FROM {DUPS_TABLE} AS d WHERE d.ord = s.ord AND {_NORMALIZED}
"""
# A later copy that was unchanged becomes a rejection carrying its row's number and raw.
_MARK_UNCHANGED_DUPLICATES = f"""
UPDATE {STAGE_TABLE} AS s SET reason = 'duplicate', e164 = d.e164, raw = p.raw
FROM {DUPS_TABLE} AS d
JOIN phone_numbers AS p ON {_KEY} AND p.e164 = d.e164
WHERE d.ord = s.ord AND s.e164 IS NULL AND s.reason IS NULL
"""
_FORGET_UNCHANGED_DUPLICATES = (
    f"DELETE FROM {SAME_TABLE} AS m USING {DUPS_TABLE} AS d WHERE m.ord = d.ord"
)

_INSERT_REJECTIONS = f"""
INSERT INTO rejected_records (run_id, source, account_id, e164, reason, record, created_at)
SELECT :run_id, :source, :account_id, s.e164, s.reason, s.raw, :run_at
FROM {STAGE_TABLE} AS s WHERE s.reason IS NOT NULL ORDER BY s.ord
"""

_FIND_CHANGES = f"""
WITH diff AS (
    INSERT INTO {DIFF_TABLE} (ord, e164, kind)
    SELECT s.ord, s.e164,
           CASE WHEN p.e164 IS NULL THEN 'i' WHEN p.removed_at IS NOT NULL THEN 'r' ELSE 'u' END
    FROM {STAGE_TABLE} AS s
    LEFT JOIN phone_numbers AS p ON {_KEY} AND p.e164 = s.e164
    WHERE {_NORMALIZED}
      AND (p.e164 IS NULL OR p.removed_at IS NOT NULL
           OR ({_S_ATTRS}) IS DISTINCT FROM ({_P_ATTRS}))
    RETURNING kind
)
SELECT count(*) FILTER (WHERE kind = 'i') AS inserted,
       count(*) FILTER (WHERE kind = 'u') AS changed,
       count(*) FILTER (WHERE kind = 'r') AS reappeared
FROM diff
"""

_CLOSE_CHANGED_VERSIONS = f"""
UPDATE phone_number_versions AS v SET valid_to = :run_at
FROM {DIFF_TABLE} AS d
WHERE {_VKEY} AND v.e164 = d.e164 AND v.valid_to IS NULL AND d.kind <> 'i'
"""

# Write the kept rows, each with a new open version in the same statement: new numbers
# by INSERT, changed and reappearing ones by UPDATE (neither tries and fails first).
_OPEN_VERSIONS = f"""
INSERT INTO phone_number_versions (source, account_id, e164, {_ATTRS}, valid_from, run_id)
SELECT :source, :account_id, p.e164, {_P_ATTRS}, :run_at, :run_id FROM written AS p
"""
# New numbers; {rows} selects the staged rows to insert.
_INSERT_NEW = f"""
WITH written AS (
    INSERT INTO phone_numbers AS p (source, account_id, e164, {_ATTRS},
                                    first_seen_at, updated_at, removed_at, raw, last_run_id)
    SELECT :source, :account_id, s.e164, {_S_ATTRS},
           :run_at, :run_at, NULL, s.raw, :run_id
    FROM {{rows}}
    RETURNING p.e164, {_P_ATTRS}
)
{_OPEN_VERSIONS}"""
_ALL_VALID_ROWS = f"{STAGE_TABLE} AS s WHERE {_NORMALIZED}"
_NEW_ROWS = f"{STAGE_TABLE} AS s JOIN {DIFF_TABLE} AS d ON d.ord = s.ord WHERE d.kind = 'i'"
# Changed and reappearing numbers: a plain UPDATE by key (an upsert would first try, and
# fail, to insert each one: 0.9 s against 0.3 s for 10,000 rows among a million).
_UPDATE_CHANGED = f"""
WITH written AS (
    UPDATE phone_numbers AS p
    SET ({_ATTRS}, updated_at, removed_at, raw, last_run_id)
      = ({_S_ATTRS}, :run_at, NULL, s.raw, :run_id)
    FROM {STAGE_TABLE} AS s JOIN {DIFF_TABLE} AS d ON d.ord = s.ord
    WHERE d.kind <> 'i' AND {_KEY} AND p.e164 = s.e164
    RETURNING p.e164, {_P_ATTRS}
)
{_OPEN_VERSIONS}"""

_FETCH_DIGEST_HALVES = """
SELECT substring(d.raw_digest FROM %(start)s FOR 8) AS half FROM phone_number_digests AS d
WHERE d.source = %(source)s AND d.account_id = %(account_id)s
ORDER BY half
"""
DIGEST_BATCH = 50_000

# Each index of a table with the statement that builds it again: the constraint's for a
# primary key or unique constraint (its index goes with it), else the index's own.
_INDEX_DEFINITIONS = """
SELECT CASE WHEN c.oid IS NULL THEN 'DROP INDEX ' || CAST(i.indexrelid AS regclass)
            ELSE 'ALTER TABLE ' || CAST(i.indrelid AS regclass)
                 || ' DROP CONSTRAINT ' || quote_ident(c.conname) END,
       CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
            ELSE 'ALTER TABLE ' || CAST(i.indrelid AS regclass) || ' ADD CONSTRAINT '
                 || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid) END
FROM pg_index AS i
LEFT JOIN pg_constraint AS c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = CAST(:table AS regclass)
ORDER BY c.oid IS NULL, CAST(i.indexrelid AS regclass)::text
"""
# Whether the table's indexes may be dropped and built again from their definitions:
# the table (every account's rows: it is one btree) is empty and ours to alter (its
# owner's role), and nothing would be lost or refused on the way. Such a table has no
# object depending on an index or on an index's constraint (a foreign key pointing at
# it, a view grouping by its primary key), no deferrable trigger (its pending events
# would forbid the ALTER TABLE after the insert), no comment on such a constraint, and
# no index whose tablespace, comment, CLUSTER mark, replica-identity role or
# statistics target the definitions do not carry. Any other table keeps them.
_MAY_BUILD_INDEXES_AFTER = """
WITH t AS (SELECT CAST(:table AS regclass) AS oid),
     ix AS (SELECT i.* FROM pg_index AS i, t WHERE i.indrelid = t.oid),
     con AS (SELECT c.* FROM pg_constraint AS c, t
             WHERE c.conrelid = t.oid AND c.contype IN ('p', 'u', 'x'))
SELECT NOT EXISTS (SELECT FROM {table})
   AND (SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class AS c, t WHERE c.oid = t.oid)
   AND NOT EXISTS (SELECT FROM pg_depend AS d
                   WHERE d.deptype = 'n'
                     AND ((d.refclassid = 'pg_class'::regclass
                           AND d.refobjid IN (SELECT ix.indexrelid FROM ix))
                          OR (d.refclassid = 'pg_constraint'::regclass
                              AND d.refobjid IN (SELECT con.oid FROM con))))
   AND NOT EXISTS (SELECT FROM pg_trigger AS g, t WHERE g.tgrelid = t.oid AND g.tgdeferrable)
   AND NOT EXISTS (SELECT FROM ix JOIN pg_class AS c ON c.oid = ix.indexrelid
                   WHERE ix.indisclustered OR ix.indisreplident OR c.reltablespace <> 0
                      OR obj_description(ix.indexrelid, 'pg_class') IS NOT NULL
                      OR EXISTS (SELECT FROM pg_attribute AS a
                                 WHERE a.attrelid = ix.indexrelid AND a.attstattarget >= 0))
   AND NOT EXISTS (SELECT FROM con WHERE obj_description(con.oid, 'pg_constraint') IS NOT NULL)
"""

_MARK_REMOVED = f"""
WITH removed AS (
    UPDATE phone_numbers AS p
    SET removed_at = :run_at, updated_at = :run_at, last_run_id = :run_id
    FROM {GONE_TABLE} AS g
    WHERE {_KEY} AND p.e164 = g.e164 AND p.removed_at IS NULL
    RETURNING p.e164
)
UPDATE phone_number_versions AS v SET valid_to = :run_at
FROM removed AS r
WHERE {_VKEY} AND v.e164 = r.e164 AND v.valid_to IS NULL
"""


@dataclass(frozen=True)
class LoadResult:
    """What one `load_listing` did, as recorded in `sync_run_sources`."""

    fetched: int
    inserted: int
    updated: int
    unchanged: int
    removed: int
    rejected: int


def fetch_active_digests(
    conn: Connection, *, source: str, account_id: str, half: int = 0
) -> DigestSet:
    """The digests of the account's active numbers, as a `DigestSet` on `half` (0 or 1) of each.

    The server sorts the halves; a server-side cursor brings them in batches,
    each appended to the set's array as one bytes object, so memory is the
    array (8 bytes a row) plus one batch.
    """
    if half not in (0, 1):
        raise ValueError(f"half must be 0 or 1, not {half!r}")
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    params = {"start": 1 + 8 * half, "source": source, "account_id": account_id}
    keys = array("Q")
    with driver.cursor(name="numbers_etl_digests", binary=True) as cursor:
        cursor.execute(_FETCH_DIGEST_HALVES, params)
        while batch := cursor.fetchmany(DIGEST_BATCH):
            keys.frombytes(b"".join([row[0] for row in batch]))
    if sys.byteorder == "little":
        keys.byteswap()  # the halves are big-endian, as the server compares them
    return DigestSet(keys, half=half)


def load_listing(
    conn: Connection,
    items: Iterable[LoadItem],
    *,
    run_id: int,
    source: str,
    account_id: str,
    run_at: datetime,
    max_removal_fraction: Decimal,
    allow_mass_removal: bool = False,
    bulk_load_min_rows: int = BULK_LOAD_MIN_ROWS,
) -> LoadResult:
    """Make `phone_numbers` of (source, account_id) match this complete listing.

    `items` is consumed once, lazily; if it raises, the exception propagates
    and the caller must roll back (use `with engine.begin() as conn:`). Raises
    `MassRemovalRefused` before writing anything when the listing would remove
    more than `max_removal_fraction` of the account's active numbers, unless
    `allow_mass_removal`, and `DigestMismatch` when an `Unchanged` item matches
    no active row. Inserting `bulk_load_min_rows` or more numbers (0: never)
    into an empty table builds its indexes after the rows, with the table
    locked until commit (`_indexes_built_after_if_empty`). `updated` counts
    changed and reappearing numbers; `rejected` counts rejections and duplicates.
    """
    if run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    params: dict[str, Any] = {
        "source": source,
        "account_id": account_id,
        "run_id": run_id,
        "run_at": run_at,
    }
    work_mem = _set_local(conn, "work_mem", LOAD_WORK_MEM)
    create_stage_table(conn)
    for table, columns in (
        (DIFF_TABLE, "ord int8, e164 text, kind text"),
        (GONE_TABLE, "e164 text"),
        (SAME_TABLE, "ord int8, e164 text"),
        (DUPS_TABLE, "ord int8, e164 text"),
        (STALE_TABLE, "digest_row tid"),
    ):
        conn.execute(text(f"CREATE TEMPORARY TABLE {table} ({columns}) ON COMMIT DROP"))

    staged = stage_listing(conn, items, source=source, account_id=account_id)
    conn.execute(text(f"ANALYZE {STAGE_TABLE} (ord, e164, reason)"))  # what the joins use
    same = "" if staged.repeated else _SAME_NAMED_BY_NORMALIZED
    mismatched, stale, removed = conn.execute(
        text(_MATCH_UNCHANGED_AND_FIND_GONE.format(same=same)), params
    ).one()
    if mismatched:
        raise DigestMismatch(
            f"{mismatched} of {staged.unchanged} elements taken as unchanged match no "
            "stored digest: phone_numbers was changed outside numbers-etl, or (about one "
            "in 10^13) half of a digest collided; nothing was changed",
            source=source,
            account_id=account_id,
        )
    active, digested, has_rows = conn.execute(text(_COUNT_ACTIVE), params).one()
    if digested > active:
        raise DigestMismatch(
            f"{digested} stored digests for {active} active numbers: phone_numbers was "
            "changed outside numbers-etl; nothing was changed",
            source=source,
            account_id=account_id,
        )
    if active > digested:
        removed += conn.execute(text(_FIND_UNDIGESTED_GONE), params).rowcount
    duplicates = 0
    if staged.normalized or staged.repeated:
        duplicates = conn.execute(text(_FIND_DUPLICATES)).rowcount
    if duplicates:
        conn.execute(text(_MARK_DUPLICATES))
        if staged.unchanged:
            conn.execute(text(_MARK_UNCHANGED_DUPLICATES), params)
            stale += conn.execute(text(_FORGET_DIGESTS_OF_UNCHANGED_DUPLICATES), params).rowcount
            conn.execute(text(_FORGET_UNCHANGED_DUPLICATES))
    rejected = staged.rejections + duplicates
    valid = staged.fetched - rejected

    _check_removal_guard(
        source=source,
        account_id=account_id,
        active=active,
        removed=removed,
        max_removal_fraction=max_removal_fraction,
        allow_mass_removal=allow_mass_removal,
    )

    if rejected:
        conn.execute(text(_INSERT_REJECTIONS), params)
    if has_rows:
        inserted, changed, reappeared = conn.execute(text(_FIND_CHANGES), params).one()
    else:  # the account's first load: every valid row is new (and none was unchanged)
        inserted, changed, reappeared = valid, 0, 0
    written = inserted + changed + reappeared
    if changed or reappeared:
        conn.execute(text(f"ANALYZE {DIFF_TABLE}"))
        with _index_probes_priced_as_cached(conn):
            conn.execute(text(_CLOSE_CHANGED_VERSIONS), params)
    if inserted:
        rows = _ALL_VALID_ROWS if inserted == valid else _NEW_ROWS
        bulk = BULK_LOAD_TABLES if 0 < bulk_load_min_rows <= inserted else ()
        with _indexes_built_after_if_empty(conn, bulk):
            conn.execute(text(_INSERT_NEW.format(rows=rows)), params)
    if changed or reappeared:
        conn.execute(text(_UPDATE_CHANGED), params)
    if stale:
        conn.execute(text(_FORGET_STALE_DIGESTS))
    recorded = 0
    if staged.normalized:
        recorded = conn.execute(text(_RECORD_DIGESTS), params).rowcount
    if removed:
        with _index_probes_priced_as_cached(conn):
            conn.execute(text(_MARK_REMOVED), params)
    if max(written + removed, recorded) > max(ANALYZE_MIN_ROWS, active // 10):
        # Autovacuum would get there later; the next load should not have to wait.
        conn.execute(text("ANALYZE phone_numbers, phone_number_versions, phone_number_digests"))

    conn.execute(
        text(
            f"DROP TABLE {STAGE_TABLE}, {DIFF_TABLE}, {GONE_TABLE}, {SAME_TABLE}, "
            f"{DUPS_TABLE}, {STALE_TABLE}"
        )
    )
    _set_local(conn, "work_mem", work_mem)
    return LoadResult(
        fetched=staged.fetched,
        inserted=inserted,
        updated=changed + reappeared,
        unchanged=valid - written,
        removed=removed,
        rejected=rejected,
    )


@contextmanager
def _local_setting(conn: Connection, name: str, value: str) -> Iterator[None]:
    """A setting for the statements inside (SET LOCAL), then back to what it was.

    Not restored when the block raises: the transaction then rolls back, and
    SET LOCAL with it.
    """
    previous = _set_local(conn, name, value)
    yield
    _set_local(conn, name, previous)


def _index_probes_priced_as_cached(conn: Connection) -> AbstractContextManager[None]:
    """random_page_cost 1.1 for the statements inside.

    Closing the versions of a few changed or removed numbers should probe the
    open-version index once per number; with the default cost (4) the planner
    scans every version instead: 2.2 s against ~0.6 s at a million numbers.
    """
    return _local_setting(conn, "random_page_cost", "1.1")


@contextmanager
def _indexes_built_after_if_empty(conn: Connection, tables: Iterable[str]) -> Iterator[None]:
    """Drop the indexes of each of `tables` that is empty, and build them again after the block.

    Each such table is locked ACCESS EXCLUSIVE until commit, so other sessions
    wait for the load instead of reading an empty table. A table that another
    session is using right now (an open transaction that read it, say) is not
    waited for: it is loaded with its indexes in place. Everything is inside
    the load's transaction: on failure the rollback brings the indexes back
    as they were. A table whose indexes carry more than their definitions (see
    `_MAY_BUILD_INDEXES_AFTER`) is left alone.
    """
    rebuild: list[str] = []
    for table in tables:
        check = text(_MAY_BUILD_INDEXES_AFTER.format(table=table))
        if not conn.execute(check, {"table": table}).scalar_one():
            continue
        try:
            with conn.begin_nested():  # a refused lock rolls back this savepoint only
                conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT"))
        except OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            log.info("%s is in use by another session: loading it with its indexes", table)
            continue
        if not conn.execute(check, {"table": table}).scalar_one():  # filled meanwhile
            continue
        for drop, build in conn.execute(text(_INDEX_DEFINITIONS), {"table": table}):
            conn.exec_driver_sql(drop)
            rebuild.append(build)
        log.info("%s is empty: building its indexes after the rows, locked until commit", table)
    yield
    if rebuild:
        with _local_setting(conn, "maintenance_work_mem", LOAD_WORK_MEM):
            for build in rebuild:
                conn.exec_driver_sql(build)


def forget_digests(conn: Connection, *, source: str, account_id: str) -> int:
    """Delete the account's digests, so that its next load normalizes every element.

    What to do after a `DigestMismatch`: the digests are a cache of what was
    loaded, and rebuilding them costs one load at full price.
    """
    statement = f"DELETE FROM phone_number_digests AS d WHERE {_DKEY}"
    return conn.execute(text(statement), {"source": source, "account_id": account_id}).rowcount


def _set_local(conn: Connection, name: str, value: str) -> str:
    """SET LOCAL a setting (for the rest of this transaction only); return its previous value."""
    previous = conn.execute(text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
    conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    return str(previous)


def _check_removal_guard(
    *,
    source: str,
    account_id: str,
    active: int,
    removed: int,
    max_removal_fraction: Decimal,
    allow_mass_removal: bool,
) -> None:
    """Raise MassRemovalRefused when removed/active exceeds the fraction (SPEC §5.6)."""
    if not active or allow_mass_removal or removed <= max_removal_fraction * active:
        return
    raise MassRemovalRefused(
        f"the listing would mark {removed} of {active} active numbers removed "
        f"({removed / active:.0%}), more than NUMBERS_ETL_MAX_REMOVAL_FRACTION="
        f"{max_removal_fraction}; nothing was changed. If the numbers really are gone, "
        "sync again with --allow-mass-removal",
        source=source,
        account_id=account_id,
    )
