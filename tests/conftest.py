"""Shared fixtures: a real PostgreSQL, the API simulator over loopback, a clean environment.

- The database is the embedded PostgreSQL (pgserver) unless
  NUMBERS_ETL_TEST_DATABASE_URL points at a server where we may CREATE DATABASE.
  It is migrated once into a template; each test gets its own copy of it.
- The simulator serves both providers on 127.0.0.1 in a thread, once per
  session; each test starts with its dataset and faults reset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from etl.db.engine import database_url as database_url_on
from etl.db.engine import embedded_postgres, ensure_database, make_engine
from etl.db.migrate import upgrade_to_head
from etl.settings import Settings, load_settings
from etl.simulator import Simulator, serve

TEST_DATABASE_URL = os.environ.get("NUMBERS_ETL_TEST_DATABASE_URL")
_CLEARED_PREFIXES = ("NUMBERS_ETL_", "SINCH_", "PINGRAM_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NUMBERS_ETL_*, SINCH_* or PINGRAM_* leaks in, and no .env is picked up."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server on which tests may create databases."""
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        return
    # Not under pytest's basetemp: concurrent pytest runs prune each other's old basetemps.
    home = Path(tempfile.mkdtemp(prefix="numbers-etl-test-pg-"))
    try:
        with embedded_postgres(home) as url:
            yield url
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """A database migrated to head once, copied for every test."""
    name = f"numbers_etl_tpl_{uuid.uuid4().hex[:8]}"
    url = ensure_database(pg_server_url, name)
    engine = make_engine(url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
    yield name
    _drop_database(pg_server_url, name)


def _drop_database(server_url: str, name: str) -> None:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    """URL of a fresh, migrated database of this test's own."""
    name = f"numbers_etl_t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    finally:
        admin.dispose()
    yield database_url_on(pg_server_url, name)
    _drop_database(pg_server_url, name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine on this test's database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[Simulator]:
    """The API simulator, serving both providers on loopback for the whole session."""
    sim = serve(host="127.0.0.1", port=0, numbers=40, seed=7)
    yield sim
    sim.stop()


@pytest.fixture
def simulator(simulator_server: Simulator) -> Simulator:
    """The simulator with its dataset, faults and request log reset."""
    simulator_server.reset()
    return simulator_server


@pytest.fixture
def sim_env(simulator: Simulator, database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment variables that point numbers-etl at the simulator and this test's database."""
    return {
        **simulator.env(),
        "NUMBERS_ETL_DATABASE_URL": database_url,
        "NUMBERS_ETL_HOME": str(tmp_path / "home"),
    }


@pytest.fixture
def make_settings(sim_env: dict[str, str]) -> Any:
    """Build Settings from sim_env plus overrides (environment-variable names)."""

    def build(**overrides: str) -> Settings:
        return load_settings(**{**sim_env, **overrides})

    return build
