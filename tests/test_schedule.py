"""The daemon as a real process: schedule, failures that don't stop it, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl.errors import ConfigError
from etl.schedule import parse_schedule
from etl.simulator import Fault, Simulator


def start_daemon(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`python -m etl daemon ARGS` in the background."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NUMBERS_ETL_", "SINCH_", "PINGRAM_"))
    }
    return subprocess.Popen(
        [sys.executable, "-m", "etl", "daemon", *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.2)


def run_statuses(engine: Engine) -> list[str]:
    """Statuses of all runs, oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT status FROM sync_runs ORDER BY id")).scalars())


def test_daemon_keeps_its_schedule_through_a_failure_and_stops_on_sigterm(
    engine: Engine, sim_env: dict[str, str], simulator: Simulator
) -> None:
    """@every 1s: several runs, a failing one in the middle, SIGTERM exits 0 with none running."""
    env = {**sim_env, "NUMBERS_ETL_SCHEDULE": "@every 1s", "NUMBERS_ETL_HTTP_MAX_ATTEMPTS": "1"}
    daemon = start_daemon(env, "--run-now")
    finished = lambda: len([s for s in run_statuses(engine) if s != "running"])  # noqa: E731
    try:
        wait_for(lambda: finished() >= 1, 60)
        simulator.faults.add("pingram.list", Fault(status=500))
        wait_for(lambda: finished() >= 4, 60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, stderr
    statuses = run_statuses(engine)
    assert "running" not in statuses
    assert statuses[0] == "succeeded"
    assert statuses.count("partial") == 1
    assert statuses.count("succeeded") >= 3
    assert "daemon stopped" in stderr


def test_sigterm_during_a_run_rolls_it_back_and_records_it_aborted(
    engine: Engine, sim_env: dict[str, str], simulator: Simulator
) -> None:
    """A run interrupted by SIGTERM is recorded 'aborted', loads nothing, and the daemon exits 0."""
    simulator.faults.add("sinch.numbers", Fault(delay=30))
    daemon = start_daemon({**sim_env, "NUMBERS_ETL_SCHEDULE": "@every 1h"}, "--run-now")
    try:
        wait_for(lambda: run_statuses(engine) == ["running"], 30)
        time.sleep(1.0)  # inside the delayed Sinch request by now
    finally:
        daemon.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = daemon.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert daemon.returncode == 0, stderr
    assert run_statuses(engine) == ["aborted"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM phone_numbers")).scalar() == 0


@pytest.mark.parametrize("expression", ["@every 30s", "@every 15m", "0 * * * *", "*/5 2 * * 1-5"])
def test_schedules_that_parse(expression: str) -> None:
    """Cron expressions and @every durations become triggers."""
    assert parse_schedule(expression) is not None


def test_a_bad_cron_expression_is_a_config_error() -> None:
    """An impossible cron field is a ConfigError naming NUMBERS_ETL_SCHEDULE."""
    with pytest.raises(ConfigError, match="NUMBERS_ETL_SCHEDULE"):
        parse_schedule("61 * * * *")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_daemon_serves_prometheus_metrics_after_a_run(
    engine: Engine, sim_env: dict[str, str]
) -> None:
    """--metrics-port serves last success, active numbers, rejections, duration and failures."""
    port = free_port()
    daemon = start_daemon(
        {**sim_env, "NUMBERS_ETL_SCHEDULE": "@every 1h"}, "--run-now", "--metrics-port", str(port)
    )
    try:
        wait_for(lambda: run_statuses(engine) == ["succeeded"], 60)
        with engine.connect() as conn:
            active = dict(
                conn.execute(text("SELECT source, count(*) FROM active_numbers GROUP BY 1")).all()
            )

        def scraped() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return str(r.read().decode())
            except OSError:
                return ""

        wait_for(lambda: "numbers_etl_active_numbers{" in scraped(), 20)
        metrics = scraped()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=20)
    org = sim_env["SINCH_ORGANISATION_ID"]
    assert (
        f'numbers_etl_active_numbers{{account_id="{org}",source="sinch"}} {active["sinch"]}.0'
        in (metrics)
    )
    assert (
        f'numbers_etl_active_numbers{{account_id="default",source="pingram"}} '
        f"{active['pingram']}.0" in metrics
    )
    assert 'numbers_etl_rejected_records{account_id="default",source="pingram"} 0.0' in metrics
    assert 'numbers_etl_runs_total{status="succeeded"} 1.0' in metrics
    for name in ("last_success_timestamp_seconds", "run_duration_seconds"):
        assert f'numbers_etl_{name}{{account_id="default",source="pingram"}}' in metrics


def test_daemon_reuses_one_sinch_login_across_runs(
    engine: Engine, database_url: str, simulator: Simulator, tmp_path: Path
) -> None:
    """In log-in mode the daemon logs in and creates an instance once, not once per run."""
    env = {
        **simulator.login_env(),
        "NUMBERS_ETL_DATABASE_URL": database_url,
        "NUMBERS_ETL_HOME": str(tmp_path),
        "NUMBERS_ETL_SCHEDULE": "@every 1s",
    }
    daemon = start_daemon(env, "--run-now")
    try:
        wait_for(lambda: run_statuses(engine).count("succeeded") >= 3, 60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, stderr
    assert (simulator.count("sinch.login"), simulator.count("sinch.instance")) == (1, 1)
    assert simulator.count("sinch.numbers") >= 3
