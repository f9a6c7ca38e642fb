"""The target database: `NUMBERS_ETL_DATABASE_URL`, or an embedded PostgreSQL.

With no URL configured, a real PostgreSQL server (the `pgserver` wheel, which
ships PostgreSQL 16 binaries) is started on demand with its data under
`NUMBERS_ETL_HOME/pgdata`, reached over a Unix socket only, and stopped when
the last process using it exits.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from etl.errors import ConfigError, NumbersEtlError
from etl.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "numbers_etl"


def to_sqlalchemy_url(url: str) -> str:
    """Any PostgreSQL URL as a SQLAlchemy URL using the psycopg 3 driver.

    >>> to_sqlalchemy_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    raise ConfigError("NUMBERS_ETL_DATABASE_URL must start with postgresql://")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for a PostgreSQL URL."""
    return create_engine(to_sqlalchemy_url(url), pool_pre_ping=True, **kwargs)


@contextlib.contextmanager
def embedded_postgres(home: Path) -> Iterator[str]:
    """Start (or join) the embedded PostgreSQL under `home`; yield the server's base URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

        try:
            home.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(home / "pgdata", cleanup_mode="stop")  # type: ignore[attr-defined]
        except Exception as exc:  # pgserver raises plain exceptions of several kinds
            raise NumbersEtlError(
                f"could not start the embedded PostgreSQL under {home}: {exc}; "
                "set NUMBERS_ETL_DATABASE_URL to use an existing server"
            ) from exc
    try:
        yield str(server.get_uri())
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; return its URL."""
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return database_url(server_url, name)


def database_url(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url` (psycopg 3 driver).

    >>> database_url("postgresql://u:pw@h:5432/postgres", "numbers_etl")
    'postgresql+psycopg://u:pw@h:5432/numbers_etl'
    """
    url = make_url(to_sqlalchemy_url(server_url)).set(database=name)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def open_database(settings: Settings) -> Iterator[Engine]:
    """An engine on the configured database, starting the embedded one if needed."""
    with contextlib.ExitStack() as stack:
        if settings.database_url is not None:
            url = settings.database_url.get_secret_value()
        else:
            server_url = stack.enter_context(embedded_postgres(settings.home))
            url = ensure_database(server_url, EMBEDDED_DATABASE)
            log.debug("using the embedded PostgreSQL under %s", settings.home)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield engine
