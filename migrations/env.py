"""Alembic environment for numbers-etl.

The database comes from, in order:

1. a SQLAlchemy `Connection` in `config.attributes["connection"]` (how
   `etl.db.migrate.upgrade_to_head` and the tests call Alembic);
2. `NUMBERS_ETL_DATABASE_URL` through `etl.settings.load_settings()`, or the
   embedded PostgreSQL under `NUMBERS_ETL_HOME` when that is unset (how a
   developer runs `alembic upgrade head` or `alembic check` by hand).

Never from `alembic.ini`. Offline mode (`--sql`) renders PostgreSQL SQL and
needs no server.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from etl.db.engine import open_database, to_sqlalchemy_url
from etl.db.migrate import lock_migrations
from etl.db.schema import metadata
from etl.settings import load_settings

config = context.config
target_metadata = metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    """Render the migrations as SQL (`alembic upgrade head --sql`)."""
    settings = load_settings()
    url = None
    if settings.database_url is not None:
        url = to_sqlalchemy_url(settings.database_url.get_secret_value())
    context.configure(
        url=url,
        dialect_name=None if url else "postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the passed-in connection, or the configured database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    with open_database(load_settings()) as engine, engine.begin() as conn:
        lock_migrations(conn)
        _run_on(conn)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
