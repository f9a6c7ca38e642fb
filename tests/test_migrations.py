"""Alembic migrations: upgrade on an empty database, no drift from etl.db.schema, offline SQL."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, ForeignKeyConstraint, inspect, text

from etl.db.engine import ensure_database, make_engine
from etl.db.migrate import alembic_config, current_revision, upgrade_to_head
from etl.db.schema import VIEW_NAMES, metadata

REPO = Path(__file__).resolve().parent.parent
TABLES = [
    "alembic_version",
    "phone_number_digests",
    "phone_number_versions",
    "phone_numbers",
    "provider_accounts",
    "rejected_records",
    "sync_run_sources",
    "sync_runs",
]

HEAD = "0002"  # the latest revision in migrations/versions


@pytest.fixture
def empty_engine(pg_server_url: str) -> Iterator[Engine]:
    """An engine on a brand-new database with nothing in it (not the migrated template)."""
    name = f"numbers_etl_empty_{uuid.uuid4().hex[:10]}"
    engine = make_engine(ensure_database(pg_server_url, name))
    yield engine
    engine.dispose()
    admin = make_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_on_an_empty_database(empty_engine: Engine) -> None:
    """upgrade_to_head creates every table and view of the contract; records the head revision."""
    assert current_revision(empty_engine) is None

    upgrade_to_head(empty_engine)

    schema = inspect(empty_engine)
    assert sorted(schema.get_table_names()) == TABLES
    assert sorted(schema.get_view_names()) == sorted(VIEW_NAMES)
    assert current_revision(empty_engine) == HEAD


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    """Migrating an up-to-date database is a no-op."""
    upgrade_to_head(engine)

    assert current_revision(engine) == HEAD


def test_concurrent_upgrades_do_not_collide(empty_engine: Engine) -> None:
    """Two processes migrating the same empty database at once both succeed, one after the other."""
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade_to_head(empty_engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert current_revision(empty_engine) == HEAD


def test_no_drift_between_schema_and_migrations(engine: Engine) -> None:
    """Autogenerate finds no difference between etl.db.schema and the migrated database."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


def test_constraint_names_match_the_schema(engine: Engine) -> None:
    """CHECK and foreign-key names (which autogenerate does not compare) match the metadata."""
    schema = inspect(engine)
    for table in metadata.sorted_tables:
        in_database = {c["name"] for c in schema.get_check_constraints(table.name)} | {
            c["name"] for c in schema.get_foreign_keys(table.name)
        }
        in_metadata = {
            str(c.name)
            for c in table.constraints
            if isinstance(c, CheckConstraint | ForeignKeyConstraint)
        }
        assert (table.name, in_database) == (table.name, in_metadata)


def test_offline_sql_renders_without_a_database() -> None:
    """`upgrade head --sql` renders the whole schema as PostgreSQL DDL without connecting."""
    config = alembic_config()
    output = io.StringIO()
    config.output_buffer = output

    command.upgrade(config, "head", sql=True)

    sql = output.getvalue()
    for statement in (
        "CREATE TABLE phone_numbers (",
        "CREATE UNIQUE INDEX uq_phone_number_versions_open ON phone_number_versions "
        "(source, account_id, e164) WHERE valid_to IS NULL;",
        "CREATE VIEW source_freshness AS",
        "INSERT INTO alembic_version (version_num) VALUES ('0001')",
        "CREATE TABLE phone_number_digests (",
        "COMMIT;",
    ):
        assert statement in sql


def test_downgrade_to_base_and_back(empty_engine: Engine) -> None:
    """Every revision can be undone completely and applied again."""
    upgrade_to_head(empty_engine)
    with empty_engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert inspect(empty_engine).get_table_names() == ["alembic_version"]

    upgrade_to_head(empty_engine)

    assert current_revision(empty_engine) == HEAD


def test_alembic_command_line_check(database_url: str) -> None:
    """`alembic check` with the repository's alembic.ini reads the URL from settings and passes."""
    env = {**os.environ, "NUMBERS_ETL_DATABASE_URL": database_url}

    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (done.returncode, done.stdout) == (0, "No new upgrade operations detected.\n")
