"""Benchmark: sync N simulated numbers into PostgreSQL, next to a raw binary COPY floor.

    python benchmarks/bench_sync.py --numbers 1000000

Runs, each in a fresh process (so peak RSS is that run's own):
  full      first sync of N Sinch numbers into an empty database
  nochange  the same listing again (must write 0 rows)
  changed   revision 1 of the listing (1% of the numbers changed)
  floor     binary COPY of the same normalized rows into an UNLOGGED table, no index
            (the median of 3 attempts)

and prints, per run: seconds per phase (fetch+parse, normalize, stage, merge,
history/removals), total, rows/s, rows written, peak RSS and the ratio to the floor.
Each run and each floor attempt starts after a CHECKPOINT, so that none shares the
server with the checkpoint of the one before (autovacuum may still be at work).

The sync runs are the real `etl.pipeline.sync`; the benchmark only wraps the
listing scanner's methods, the element decoder and the normalizer with timers and
times each SQL statement of the load through SQLAlchemy's events. Staging is the
load's remaining time (the COPY itself runs on the psycopg connection). The
simulator runs as its own process. Uses NUMBERS_ETL_DATABASE_URL when set, else an
embedded PostgreSQL in a temp dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

SCENARIOS = (("full", 0), ("nochange", 0), ("changed", 1))
# The floor moves by up to 2x between runs on a shared 2-core machine: the ratios use
# the median of this many COPYs of the same rows, and the report shows all of them.
FLOOR_ATTEMPTS = 3


# ---- child processes ------------------------------------------------------


def child_sync(database_url: str, env: dict[str, str]) -> dict[str, Any]:
    """One real sync of Sinch, instrumented; returns phases, counts and peak RSS."""
    from sqlalchemy import event, text

    from etl import pipeline, sources
    from etl.db.engine import make_engine
    from etl.extract import _json
    from etl.settings import load_settings

    timers = {"fetch+parse": 0.0, "normalize": 0.0, "merge": 0.0, "history/removals": 0.0}
    spec = sources.SOURCES["sinch"]

    # Reading and splitting the body is timed per call of the scanner's methods (a call
    # handles a buffer of a few hundred elements), not per element: a timer around each
    # of a million elements would cost the sync 0.3 s that it does not spend unmeasured.
    depth = [0]

    def timed_method(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            if depth[0]:  # called from another timed method: already counted
                return method(*args)
            depth[0] += 1
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                timers["fetch+parse"] += time.perf_counter() - start
                depth[0] -= 1

        return run

    for name in ("peek", "take", "value", "batch", "end"):
        setattr(_json._Scanner, name, timed_method(getattr(_json._Scanner, name)))

    def parse_listing(body: Any, **kw: Any) -> Any:
        listing = spec.parse_listing(body, **kw)
        decode = listing.decode

        def timed_decode(element: bytes) -> Any:
            start = time.perf_counter()
            try:
                return decode(element)
            finally:
                timers["fetch+parse"] += time.perf_counter() - start

        listing.decode = timed_decode
        return listing

    def normalize(record: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return spec.normalize(record, **kw)
        finally:
            timers["normalize"] += time.perf_counter() - start

    sources.SOURCES["sinch"] = dataclasses.replace(
        spec, parse_listing=parse_listing, normalize=normalize
    )
    pipeline.SOURCES = sources.SOURCES

    engine = make_engine(database_url)
    statement_start: dict[int, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statement_start[id(cursor)] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        elapsed = time.perf_counter() - statement_start.pop(id(cursor), time.perf_counter())
        if ("valid_to" in statement and "UPDATE" in statement) or "removed_at = " in statement:
            timers["history/removals"] += elapsed
        elif "phone_number" in statement or "_stage" in statement or "ANALYZE" in statement:
            timers["merge"] += elapsed

    with engine.connect() as conn:
        xid = conn.execute(text("SELECT txid_current()")).scalar_one()
    settings = load_settings(**env, NUMBERS_ETL_DATABASE_URL=database_url)
    start = time.perf_counter()
    result = pipeline.sync(engine, settings, trigger="manual", sources=["sinch"])
    total = time.perf_counter() - start
    outcome = result.outcomes[0]
    if outcome.result is None:
        raise SystemExit(f"sync failed: {outcome.error}")
    load_ms = outcome.duration_ms / 1000
    timers["stage"] = max(0.0, load_ms - sum(timers.values()))
    phases = dict(timers)  # the query below is the benchmark's own, not the sync's
    with engine.connect() as conn:
        written = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM phone_numbers WHERE xmin::text::bigint > :x)"
                " + (SELECT count(*) FROM phone_number_versions WHERE xmin::text::bigint > :x)"
            ),
            {"x": xid},
        ).scalar_one()
    return {
        "total": total,
        "phases": phases,
        "counts": vars(outcome.result),
        "rows_written": written,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_floor(database_url: str, env: dict[str, str]) -> dict[str, Any]:
    """Normalize the listing into memory, then time only its binary COPY into an UNLOGGED table."""
    import psycopg

    from etl.db.engine import make_engine
    from etl.db.stage import TextArrayBinaryDumper
    from etl.http import build_session
    from etl.settings import load_settings
    from etl.sources import SOURCES
    from etl.transform import ATTRIBUTE_COLUMNS, NumberRow

    settings = load_settings(**env)
    spec = SOURCES["sinch"]
    extractor = spec.extractor(settings, build_session(settings))
    account = extractor.accounts()[0]
    rows: list[tuple[Any, ...]] = []
    with extractor.open_listing(account) as body:
        for record in spec.parse_listing(body, account_id=account).records:
            item = spec.normalize(record, account_id=account)
            if isinstance(item, NumberRow):
                rows.append((item.e164, *(getattr(item, c) for c in ATTRIBUTE_COLUMNS)))
    columns = ["e164", *ATTRIBUTE_COLUMNS]
    dsn = make_engine(database_url).url.set(drivername="postgresql").render_as_string(False)
    attempts: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(FLOOR_ATTEMPTS):
            checkpoint(database_url)
            # The floor table has the target's column types, and nothing else.
            conn.execute("DROP TABLE IF EXISTS bench_floor")
            conn.execute(
                "CREATE UNLOGGED TABLE bench_floor AS SELECT e164, "
                + ", ".join(ATTRIBUTE_COLUMNS)
                + " FROM phone_numbers WITH NO DATA"
            )
            type_names = [
                r[0]
                for r in conn.execute(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'bench_floor'::regclass AND attnum > 0 ORDER BY attnum"
                )
            ]
            with conn.cursor() as cursor:
                cursor.adapters.register_dumper(tuple, TextArrayBinaryDumper)
                start = time.perf_counter()
                with cursor.copy(
                    f"COPY bench_floor ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(type_names)
                    for row in rows:
                        copy.write_row(row)
                attempts.append(time.perf_counter() - start)
            conn.execute("DROP TABLE bench_floor")
    return {"total": statistics.median(attempts), "attempts": attempts, "rows": len(rows)}


# ---- the parent -------------------------------------------------------------


@contextmanager
def simulator(numbers: int, revision: int) -> Iterator[dict[str, str]]:
    """`numbers-etl simulate` in its own process; yields the environment pointing at it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl",
            "simulate",
            "--port",
            "0",
            "--numbers",
            str(numbers),
            "--revision",
            str(revision),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        env: dict[str, str] = {}
        proc.stdout.readline()  # "simulator serving … on URL"
        for line in proc.stdout:
            key, _, value = line.strip().removeprefix("export ").partition("=")
            env[key] = value
            if len(env) == 8:
                break
        yield {k: v for k, v in env.items() if k.startswith("SINCH_")}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def checkpoint(database_url: str) -> None:
    """CHECKPOINT, so that a measurement does not share the server with the writes of the
    previous one (a checkpoint of a million-row load runs for minutes); skipped where
    the role may not."""
    import psycopg

    from etl.db.engine import make_engine

    dsn = make_engine(database_url).url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            print("(no CHECKPOINT between runs: the role may not)", file=sys.stderr)


def run_child(kind: str, database_url: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its JSON report."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--database-url", database_url],
        input=json.dumps(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextmanager
def benchmark_database() -> Iterator[str]:
    """A fresh, migrated database; dropped afterwards."""
    from etl.db.engine import embedded_postgres, ensure_database, make_engine
    from etl.db.migrate import upgrade_to_head

    with ExitStack() as stack:
        server = os.environ.get("NUMBERS_ETL_DATABASE_URL")
        if not server:
            home = Path(tempfile.mkdtemp(prefix="numbers-etl-bench-"))
            stack.callback(shutil.rmtree, home, ignore_errors=True)
            server = stack.enter_context(embedded_postgres(home))
        name = f"numbers_etl_bench_{uuid.uuid4().hex[:8]}"
        url = ensure_database(server, name)
        engine = make_engine(url)
        upgrade_to_head(engine)
        engine.dispose()
        try:
            yield url
        finally:
            admin = make_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


def main() -> None:
    """Parse arguments; run as the parent or as one measuring child."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["sync", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        env = json.loads(sys.stdin.read())
        child = child_sync if args.child == "sync" else child_floor
        print(json.dumps(child(args.database_url, env)))
        return

    reports: dict[str, dict[str, Any]] = {}
    with benchmark_database() as url:
        for name, revision in SCENARIOS:
            with simulator(args.numbers, revision) as env:
                checkpoint(url)
                reports[name] = run_child("sync", url, env)
        with simulator(args.numbers, 0) as env:
            floor = run_child("floor", url, env)
    print_report(args.numbers, reports, floor)


def print_report(numbers: int, reports: dict[str, dict[str, Any]], floor: dict[str, Any]) -> None:
    """The figures, one block per run."""
    phases = ["fetch+parse", "normalize", "stage", "merge", "history/removals"]
    print(f"numbers-etl benchmark: {numbers:,} Sinch numbers from the simulator")
    attempts = ", ".join(f"{s:.2f}" for s in floor["attempts"])
    print(
        f"floor: binary COPY of {floor['rows']:,} normalized rows into an UNLOGGED table: "
        f"{floor['total']:.2f} s ({floor['rows'] / floor['total']:,.0f} rows/s; "
        f"median of {attempts})"
    )
    header = ["run", *phases, "total s", "rows/s", "written", "peak RSS MB", "x floor"]
    print("  ".join(header))
    for name, r in reports.items():
        cells = [
            name,
            *(f"{r['phases'][p]:.2f}" for p in phases),
            f"{r['total']:.2f}",
            f"{numbers / r['total']:,.0f}",
            f"{r['rows_written']:,}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['total'] / floor['total']:.2f}",
        ]
        print("  ".join(cells))
        print(f"    counts: {r['counts']}")


if __name__ == "__main__":
    main()
