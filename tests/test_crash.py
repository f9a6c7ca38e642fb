"""Crashes and concurrency with real processes (SPEC §5.7): SIGKILL mid-load, two syncs at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from etl.simulator import Fault, Simulator

STATE = "SELECT source, e164, cost_amount, label, xmin::text FROM phone_numbers ORDER BY 1, 2"


def cli(*args: str) -> list[str]:
    """The command line of `python -m etl ARGS`."""
    return [sys.executable, "-m", "etl", *args]


def clean_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without our variables, plus `env`."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NUMBERS_ETL_", "SINCH_", "PINGRAM_"))
    }
    return {**base, **env}


def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.1)


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    """All rows of a query, as tuples."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_sigkill_mid_load_keeps_the_last_good_state_and_the_next_run_succeeds(
    engine: Engine, sim_env: dict[str, str], simulator: Simulator
) -> None:
    """A sync killed with SIGKILL while streaming a listing into COPY changes nothing."""
    env = clean_env(sim_env)
    first = subprocess.run(cli("sync"), env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    before = rows(engine, STATE)
    simulator.set_dataset(revision=1)
    simulator.faults.add("sinch.numbers", Fault(body_delay=30))
    victim = subprocess.Popen(
        cli("sync"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(
        lambda: rows(engine, "SELECT status FROM sync_runs WHERE id = 2") == [("running",)], 30
    )
    wait_for(
        lambda: (
            rows(
                engine,
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY _numbers_stage%'",
            )
            == [(1,)]
        ),
        30,
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert rows(engine, STATE) == before
    again = subprocess.run(cli("sync"), env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert rows(engine, "SELECT id, status FROM sync_runs ORDER BY id") == [
        (1, "succeeded"),
        (2, "aborted"),
        (3, "succeeded"),
    ]
    assert rows(engine, STATE) != before


def test_a_second_sync_exits_or_waits_while_one_runs(
    engine: Engine, sim_env: dict[str, str], simulator: Simulator
) -> None:
    """While one sync runs, another exits 1 with a clear message, and `--wait` waits for it."""
    env = clean_env(sim_env)
    simulator.faults.add("sinch.numbers", Fault(delay=4))
    first = subprocess.Popen(
        cli("sync"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(lambda: rows(engine, "SELECT status FROM sync_runs") == [("running",)], 30)
    second = subprocess.run(cli("sync"), env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 1
    assert second.stderr.startswith("error: another sync is running")
    waiter = subprocess.run(
        cli("sync", "--wait"), env=env, capture_output=True, text=True, check=False, timeout=60
    )
    _, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert waiter.returncode == 0, waiter.stderr
    assert rows(engine, "SELECT id, status FROM sync_runs ORDER BY id") == [
        (1, "succeeded"),
        (2, "succeeded"),
    ]
