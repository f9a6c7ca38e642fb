"""The daemon: APScheduler 3 calling `pipeline.sync` on NUMBERS_ETL_SCHEDULE.

Jobs run in the main thread (APScheduler's DebugExecutor), one at a time by
construction; missed runs are coalesced into one, within a misfire grace time.
SIGTERM/SIGINT during a run interrupts it (its transaction rolls back and the
run is recorded `aborted`); between runs they stop the scheduler at once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.executors.debug import DebugExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from etl import metrics
from etl.db.reports import fetch_active_counts
from etl.errors import ConfigError, NumbersEtlError
from etl.pipeline import SourceClients, selected_sources, sync
from etl.settings import Settings, parse_duration

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 300


class DaemonStop(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT while a run is in progress."""


def parse_schedule(expression: str) -> BaseTrigger:
    """A trigger from a 5-field cron expression (UTC) or `@every DURATION`."""
    try:
        if expression.strip().startswith("@every"):
            seconds = parse_duration(expression.strip().removeprefix("@every"))
            return IntervalTrigger(seconds=seconds, timezone=UTC)
        return CronTrigger.from_crontab(expression, timezone=UTC)
    except ValueError as exc:
        raise ConfigError(f"NUMBERS_ETL_SCHEDULE: {exc}") from None


def run_daemon(schedule: str, run_once: Callable[[], None], *, run_now: bool = False) -> None:
    """Call `run_once` on the schedule until SIGTERM or SIGINT; return normally."""
    scheduler = BlockingScheduler(executors={"default": DebugExecutor()}, timezone=UTC)
    state = {"running": False, "stopping": False}

    def job() -> None:
        state["running"] = True
        try:
            run_once()
        finally:
            state["running"] = False
            if state["stopping"]:
                scheduler.shutdown(wait=False)

    def on_error(event: JobExecutionEvent) -> None:
        if not isinstance(event.exception, KeyboardInterrupt):
            log.error("scheduled run failed: %s; the schedule goes on", event.exception)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        state["stopping"] = True
        if state["running"]:
            raise DaemonStop
        scheduler.shutdown(wait=False)

    # An explicit next_run_time=None would pause the job, so pass it only for --run-now.
    first_run = {"next_run_time": datetime.now(UTC)} if run_now else {}
    scheduler.add_job(
        job,
        parse_schedule(schedule),
        id="sync",
        name="sync",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        **first_run,
    )
    scheduler.add_listener(on_error, EVENT_JOB_ERROR)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("daemon started, schedule %r", schedule)
        scheduler.start()
    except DaemonStop:
        pass
    except JobLookupError:
        # shutdown() from inside the job empties the job store before APScheduler
        # reschedules the job; when we asked to stop, that is the clean way out.
        if not state["stopping"]:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("daemon stopped")


def run_scheduled(
    engine: Engine,
    settings: Settings,
    *,
    run_now: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run `sync` on the settings' schedule until SIGTERM/SIGINT (the `daemon` command)."""
    selected_sources(settings, None)
    parse_schedule(settings.schedule)
    if metrics_port is not None:
        metrics.serve_metrics(metrics_port, metrics_host)
    clients = SourceClients(settings)  # one Sinch log-in and instance for the daemon's life

    def run_once() -> None:
        try:
            result = sync(engine, settings, trigger="schedule", clients=clients)
        except DaemonStop:
            log.warning("run interrupted by a signal; recorded as aborted")
            raise
        except NumbersEtlError as exc:
            log.error("run not started: %s", exc)
            metrics.RUNS.labels(status="not_started").inc()
            return
        metrics.RUNS.labels(status=result.status).inc()
        for outcome in result.outcomes:
            labels = {"source": outcome.source, "account_id": outcome.account_id}
            metrics.RUN_DURATION.labels(**labels).set(outcome.duration_ms / 1000)
            if outcome.status == "failed":
                metrics.FAILURES.labels(**labels).inc()
            elif outcome.result is not None:
                metrics.LAST_SUCCESS.labels(**labels).set(result.run_at.timestamp())
                metrics.REJECTED_RECORDS.labels(**labels).set(outcome.result.rejected)
        for (source, account_id), count in fetch_active_counts(engine).items():
            metrics.ACTIVE_NUMBERS.labels(source=source, account_id=account_id).set(count)

    run_daemon(settings.schedule, run_once, run_now=run_now)
