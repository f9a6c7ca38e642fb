"""The `numbers-etl` command line: parsing and printing only.

Errors are printed here, once, as one line (`error: …`) on stderr, with the exit
code of their class (2 for configuration and usage, 1 otherwise); `--traceback`
shows the whole stack instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from etl import __version__
from etl.errors import ConfigError, NumbersEtlError, redact
from etl.settings import Settings, load_settings, parse_duration

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


class _Cli(click.Group):
    """Runs a command and turns NumbersEtlError into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NumbersEtlError as exc:
            if ctx.meta.get("traceback"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except DBAPIError as exc:
            if ctx.meta.get("traceback"):
                raise
            lines = str(exc.orig or exc).strip().splitlines()
            detail = lines[0] if lines else type(exc.orig or exc).__name__
            click.echo(f"error: database: {redact(detail, ctx.meta.get('secrets', ()))}", err=True)
            sys.exit(1)


@click.group(cls=_Cli, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="numbers-etl")
@click.option("--log-level", type=LOG_LEVELS, help="Overrides NUMBERS_ETL_LOG_LEVEL.")
@click.option("--traceback", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None, traceback: bool) -> None:
    """Keep a PostgreSQL table of every phone number rented from Sinch and Pingram."""
    ctx.meta["traceback"] = traceback
    ctx.meta["log_level"] = log_level.upper() if log_level else None


def _settings(ctx: click.Context, **overrides: str) -> Settings:
    settings = load_settings(**overrides)
    ctx.meta["secrets"] = secrets = settings.secrets()
    level = ctx.meta.get("log_level") or settings.log_level
    from etl.logs import setup_logging

    setup_logging(level=level, fmt=settings.log_format, secrets=secrets)
    return settings


@contextmanager
def _database(settings: Settings, *, migrate: bool = True) -> Iterator[Engine]:
    from etl.db.engine import open_database
    from etl.db.migrate import upgrade_to_head

    with open_database(settings) as engine:
        if migrate:
            upgrade_to_head(engine)
        yield engine


@cli.command(context_settings=CONTEXT)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="S",
    help="Only this source (repeatable): sinch, pingram.",
)
@click.option(
    "--allow-mass-removal",
    is_flag=True,
    help="Let a listing remove more than NUMBERS_ETL_MAX_REMOVAL_FRACTION, once.",
)
@click.option("--wait", is_flag=True, help="Wait for a running sync instead of exiting.")
@click.pass_context
def sync(
    ctx: click.Context, sources: tuple[str, ...], allow_mass_removal: bool, wait: bool
) -> None:
    """Sync every configured source once, print a summary, exit 0/1/2."""
    from etl.pipeline import selected_sources
    from etl.pipeline import sync as run_sync

    settings = _settings(ctx)
    selected_sources(settings, sources)  # configuration errors before touching the database
    with _database(settings) as engine:
        result = run_sync(
            engine,
            settings,
            trigger="manual",
            sources=sources,
            allow_mass_removal=allow_mass_removal,
            wait_for_lock=wait,
        )
    _print_summary(result)
    sys.exit(result.exit_code)


def _print_summary(result: Any) -> None:
    rows = [
        {
            "source": o.source,
            "account": o.account_id,
            "status": o.status,
            **({k: v for k, v in vars(o.result).items()} if o.result else {}),
            "seconds": f"{o.duration_ms / 1000:.1f}",
        }
        for o in result.outcomes
    ]
    click.echo(f"run {result.run_id}: {result.status}")
    click.echo(
        format_table(
            rows,
            [
                "source",
                "account",
                "status",
                "fetched",
                "inserted",
                "updated",
                "unchanged",
                "removed",
                "rejected",
                "seconds",
            ],
        )
    )
    for o in result.outcomes:
        if o.error:
            click.echo(f"error: {o.source}/{o.account_id}: {o.error}", err=True)


def _cell(value: Any) -> str:
    """A table cell: times to the second in UTC, durations as H:MM:SS, None blank."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, timedelta):
        return str(timedelta(seconds=round(value.total_seconds())))
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of `columns` (missing values blank)."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


@cli.command(context_settings=CONTEXT)
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema to the latest revision."""
    from etl.db.migrate import current_revision

    settings = _settings(ctx)
    with _database(settings) as engine:
        click.echo(f"database at revision {current_revision(engine)}")


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--limit", default=10, show_default=True, help="How many recent runs to show.")
@click.option(
    "--max-age",
    metavar="DURATION",
    help="Exit 1 if a configured source's last success is older (e.g. 2h).",
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, limit: int, max_age: str | None) -> None:
    """Show recent runs and each source's freshness."""
    from etl.db.migrate import current_revision
    from etl.db.runs import fetch_freshness, fetch_recent_runs
    from etl.pipeline import stale_sources

    settings = _settings(ctx)
    try:
        max_age_s = parse_duration(max_age) if max_age else None
    except ValueError as exc:
        raise ConfigError(f"--max-age: {exc}") from None
    with _database(settings, migrate=False) as engine:  # a monitoring check never migrates
        if current_revision(engine) is None:
            raise ConfigError(
                "the database has no numbers-etl schema yet: run `numbers-etl migrate`"
            )
        runs = fetch_recent_runs(engine, limit=limit)
        freshness = fetch_freshness(engine)
    stale = stale_sources(settings, freshness, max_age_s) if max_age_s is not None else []
    if as_json:
        click.echo(
            json.dumps(
                {"runs": runs, "freshness": freshness, "stale": stale}, default=str, indent=2
            )
        )
    else:
        click.echo("recent runs")
        click.echo(
            format_table(runs, ["id", "trigger", "status", "started_at", "finished_at", "error"])
        )
        click.echo("\nsource freshness")
        click.echo(
            format_table(
                freshness, ["source", "account_id", "last_success_at", "age", "last_status"]
            )
        )
    if stale:
        for item in stale:
            click.echo(f"stale: {item}", err=True)
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.option("--numbers", default=200, show_default=True, help="Numbers per simulated provider.")
@click.option("--seed", default=1, show_default=True, help="Seed of the simulated data.")
@click.option(
    "--database-url",
    metavar="URL",
    help="Load into this database instead of the demo's own embedded one.",
)
@click.pass_context
def demo(ctx: click.Context, numbers: int, seed: int, database_url: str | None) -> None:
    """Sync the bundled API simulator into an embedded database and show the result.

    The demo never touches NUMBERS_ETL_DATABASE_URL or the archive: its data
    lives in its own embedded PostgreSQL under NUMBERS_ETL_HOME/demo.
    """
    from etl.db.reports import fetch_demo_report
    from etl.pipeline import sync as run_sync
    from etl.simulator import serve

    sim = serve(host="127.0.0.1", port=0, numbers=numbers, seed=seed)
    try:
        # Every source and storage variable is set here, so nothing from the
        # environment or .env can point the demo's fake numbers at real data,
        # nor stop the demo with a half-configured credential.
        overrides = {
            **sim.env(),
            "SINCH_EMAIL": "",
            "SINCH_PASSWORD": "",
            "PINGRAM_ACCOUNT": "default",
            "NUMBERS_ETL_DATABASE_URL": database_url or "",
            "NUMBERS_ETL_ARCHIVE_DIR": "",
        }
        home = load_settings(**overrides).home / "demo"
        settings = _settings(ctx, **overrides, NUMBERS_ETL_HOME=str(home))
        where = "--database-url" if database_url else f"the embedded PostgreSQL under {home}"
        click.echo(f"simulator on {sim.url}; loading into {where}")
        with _database(settings) as engine:
            result = run_sync(engine, settings, trigger="demo", wait_for_lock=True)
            _print_summary(result)
            report = fetch_demo_report(engine)
    finally:
        sim.stop()
    for title, rows in report.items():
        click.echo(f"\n{title}")
        click.echo(format_table(rows, list(rows[0]) if rows else ["(none)"]))
    sys.exit(result.exit_code)


@cli.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=8080, show_default=True, help="Port (0 picks a free one).")
@click.option("--numbers", default=1000, show_default=True, help="Numbers per provider.")
@click.option("--seed", default=1, show_default=True, help="Seed of the simulated data.")
@click.option(
    "--revision",
    default=0,
    show_default=True,
    help="Data revision: each revision >= 1 changes 1% of the numbers.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="ENDPOINT=SPEC",
    help="Inject faults, e.g. sinch.numbers=503,503 (repeatable).",
)
@click.option("--instance-ttl", type=int, help="Seconds before created Sinch instances expire.")
def simulate(
    host: str,
    port: int,
    numbers: int,
    seed: int,
    revision: int,
    faults: tuple[str, ...],
    instance_ttl: int | None,
) -> None:
    """Run the API simulator alone, printing the environment that points at it."""
    from etl.settings import is_loopback_host
    from etl.simulator import parse_fault, serve

    if not is_loopback_host(host):
        raise ConfigError("--host must be a loopback address (the simulator is for local use)")
    try:
        parsed = [parse_fault(spec) for spec in faults]
    except ValueError as exc:
        raise ConfigError(f"--fault: {exc}") from None
    try:
        sim = serve(host=host, port=port, numbers=numbers, seed=seed)
    except OSError as exc:
        raise ConfigError(f"--port {port}: cannot listen on {host}: {exc.strerror}") from None
    sim.set_dataset(revision=revision)
    for endpoint, items in parsed:
        sim.faults.add(endpoint, *items)
    if instance_ttl is not None:
        sim.faults.instance_ttl = instance_ttl
    click.echo(f"simulator serving Sinch and Pingram on {sim.url} (Ctrl-C stops it)")
    for key, value in sim.env().items():
        click.echo(f"export {key}={value}")
    sys.stdout.flush()
    sim.serve_forever()


@cli.command(context_settings=CONTEXT)
@click.option("--run-now", is_flag=True, help="Sync once at start, then follow the schedule.")
@click.option("--metrics-port", type=int, metavar="P", help="Serve Prometheus metrics on port P.")
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics server binds (0.0.0.0 in a container).",
)
@click.pass_context
def daemon(ctx: click.Context, run_now: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Sync on NUMBERS_ETL_SCHEDULE until SIGTERM or SIGINT (exit 0)."""
    from etl.schedule import run_scheduled

    settings = _settings(ctx)
    with _database(settings) as engine:
        run_scheduled(
            engine,
            settings,
            run_now=run_now,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--allow-mass-removal",
    is_flag=True,
    help="Let an archive remove more than NUMBERS_ETL_MAX_REMOVAL_FRACTION.",
)
@click.pass_context
def backfill(ctx: click.Context, paths: tuple[Path, ...], allow_mass_removal: bool) -> None:
    """Load archived responses (files or folders) in time order, rebuilding history."""
    from tqdm import tqdm

    from etl.backfill import backfill as run_backfill

    settings = _settings(ctx)

    def progress(items: Any) -> Any:
        items = list(items)
        return tqdm(items, unit="file", disable=len(items) < 10 or not sys.stderr.isatty())

    with _database(settings) as engine:
        result = run_backfill(
            engine, settings, list(paths), allow_mass_removal=allow_mass_removal, progress=progress
        )
    click.echo(
        f"backfill: {len(result.loaded)} loaded, {len(result.skipped)} already applied, "
        f"{len(result.problems)} problems"
    )
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(result.exit_code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `numbers-etl` console script."""
    cli.main(args=argv, prog_name="numbers-etl")
