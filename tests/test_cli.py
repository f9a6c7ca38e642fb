"""The numbers-etl command line, run as a real process (SPEC §2: exit codes, one-line errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.simulator import Fault, Simulator

COMMANDS = ["sync", "daemon", "backfill", "migrate", "status", "demo", "simulate"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m etl ARGS` with only PATH/HOME and `env` set."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NUMBERS_ETL_", "SINCH_", "PINGRAM_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "etl", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    """`numbers-etl COMMAND --help` exits 0 and shows its usage."""
    done = run_cli(command, "--help")
    assert done.returncode == 0
    assert f"Usage: numbers-etl {command}" in done.stdout


def test_a_configuration_error_exits_2_with_one_line() -> None:
    """A missing credential is one line on stderr naming the variable, exit code 2."""
    done = run_cli("sync", env={"SINCH_INSTANCE_ID": "abc"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: SINCH_INSTANCE_SECRET is required when SINCH_INSTANCE_ID is set"
    ]


def test_no_source_configured_exits_2() -> None:
    """sync with no credentials at all is a configuration error."""
    done = run_cli("sync")
    assert done.returncode == 2
    assert done.stderr.startswith("error: no source configured")
    assert len(done.stderr.splitlines()) == 1


def test_sync_prints_a_summary_and_exits_0(sim_env: dict[str, str]) -> None:
    """A successful sync prints the run and one summary row per source."""
    done = run_cli("sync", env=sim_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "run 1: succeeded"
    assert lines[1].split() == [
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
    ]
    assert [line.split()[:3] for line in lines[2:]] == [
        ["sinch", sim_env["SINCH_ORGANISATION_ID"], "succeeded"],
        ["pingram", "default", "succeeded"],
    ]


def test_a_failed_source_exits_1_and_the_other_still_loads(
    sim_env: dict[str, str], simulator: Simulator
) -> None:
    """With Pingram refusing the key, Sinch loads, the run is partial and the exit code 1."""
    simulator.faults.add("pingram.list", Fault(status=401))
    done = run_cli("sync", env=sim_env)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "run 1: partial"
    assert "sinch" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: pingram/default:")


def test_secrets_never_reach_the_output_even_at_debug(sim_env: dict[str, str]) -> None:
    """At DEBUG, neither stdout nor stderr carries the instance secret or the API key."""
    done = run_cli("--log-level", "DEBUG", "sync", env=sim_env)
    assert done.returncode == 0, done.stderr
    for secret in (sim_env["SINCH_INSTANCE_SECRET"], sim_env["PINGRAM_API_KEY"]):
        assert secret not in done.stdout + done.stderr


def test_json_logs_are_one_object_per_line_with_run_context(sim_env: dict[str, str]) -> None:
    """With NUMBERS_ETL_LOG_FORMAT=json every stderr line parses, summaries carry run and source."""
    done = run_cli("sync", env={**sim_env, "NUMBERS_ETL_LOG_FORMAT": "json"})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    summaries = [line for line in lines if line["message"].startswith("summary")]
    assert sorted(s["source"] for s in summaries) == ["pingram", "sinch"]
    assert {s["run_id"] for s in summaries} == {1}
    assert all(s["status"] == "succeeded" and "inserted" in s for s in summaries)


def test_status_reports_runs_and_freshness(sim_env: dict[str, str]) -> None:
    """status --json lists the run; --max-age passes when fresh and fails when stale."""
    assert run_cli("status", "--max-age", "1h", env=sim_env).returncode == 1  # nothing synced yet
    assert run_cli("sync", env=sim_env).returncode == 0
    done = run_cli("status", "--json", env=sim_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(r["id"], r["status"]) for r in report["runs"]] == [(1, "succeeded")]
    assert sorted(f["source"] for f in report["freshness"]) == ["pingram", "sinch"]
    assert run_cli("status", "--max-age", "1h", env=sim_env).returncode == 0
    table = run_cli("status", env=sim_env)
    assert "source freshness" in table.stdout


def test_status_rejects_a_bad_duration(sim_env: dict[str, str]) -> None:
    """--max-age that is not a duration is a usage error (exit 2)."""
    done = run_cli("status", "--max-age", "soon", env=sim_env)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --max-age:")


def test_demo_loads_the_simulator_and_prints_a_report(database_url: str, tmp_path: Path) -> None:
    """demo needs no credentials: it serves the simulator, syncs it and prints the report."""
    done = run_cli(
        "demo",
        "--numbers",
        "30",
        "--database-url",
        database_url,
        env={
            "NUMBERS_ETL_HOME": str(tmp_path),
            "NUMBERS_ETL_DATABASE_URL": "postgresql://x@nowhere/prod",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "run 1: succeeded" in done.stdout
    assert "active numbers by source" in done.stdout
    assert "monthly cost by country" in done.stdout


def test_migrate_reports_the_revision(sim_env: dict[str, str]) -> None:
    """migrate on an up-to-date database says which revision it is at."""
    done = run_cli("migrate", env=sim_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("database at revision ")


def test_an_unreachable_database_is_one_line() -> None:
    """A database that refuses connections is one `error: database:` line, exit 1, no password."""
    done = run_cli(
        "migrate", env={"NUMBERS_ETL_DATABASE_URL": "postgresql://etl:hunter22@127.0.0.1:1/x"}
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: database: ")
    assert "hunter22" not in done.stderr


def test_help_never_shows_secrets(sim_env: dict[str, str]) -> None:
    """--help output does not echo configured secrets (SPEC §3)."""
    for command in COMMANDS:
        done = run_cli(command, "--help", env=sim_env)
        for secret in (sim_env["SINCH_INSTANCE_SECRET"], sim_env["PINGRAM_API_KEY"]):
            assert secret not in done.stdout


def test_status_on_an_unmigrated_database_says_to_migrate(database_url: str) -> None:
    """status never migrates: on an empty schema it says to run migrate (exit 2)."""
    from sqlalchemy import text

    from etl.db.engine import make_engine

    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    done = run_cli("status", env={"NUMBERS_ETL_DATABASE_URL": database_url})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: the database has no numbers-etl schema yet: run `numbers-etl migrate`"
    ]
