"""Bring the database schema to the latest revision with the migrations shipped in the package.

The Alembic scripts live in `migrations/` in the repository and are installed as
the package `etl.migrations`, so this works from any directory after
`pip install .`. No `alembic.ini` is read.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

# pg_advisory_xact_lock key held while migrating, so that two processes starting
# at once migrate one after the other (the second then finds nothing to do).
# The bytes spell "NUMBERS" + 0x02; the sync lock (etl.db.lock) uses 0x01.
MIGRATE_LOCK_KEY = int.from_bytes(b"NUMBERS\x02", "big")


def alembic_config() -> Config:
    """An Alembic Config pointing at the migrations inside the installed package."""
    config = Config()
    location = str(files("etl.migrations"))
    config.set_main_option("script_location", location.replace("%", "%%"))
    return config


def lock_migrations(conn: Connection) -> None:
    """Wait for, then hold until the end of the transaction, the migration lock."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})


def upgrade_to_head(engine: Engine) -> None:
    """Migrate the database to the latest revision, in one transaction.

    Safe to call from several processes at once: they are serialized by an
    advisory lock, and an up-to-date database is left unchanged.
    """
    with engine.begin() as conn:
        lock_migrations(conn)
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
