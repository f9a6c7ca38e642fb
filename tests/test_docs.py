"""The README cannot drift: every command and setting is documented, every SQL example runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from etl.cli import cli
from etl.pipeline import sync
from etl.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()
SQL_EXAMPLES = re.findall(r"```sql\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_readme(command: str) -> None:
    """Each CLI command appears in the README as `numbers-etl COMMAND`."""
    assert f"numbers-etl {command}" in README


@pytest.mark.parametrize(
    "variable", sorted(f.alias for f in Settings.model_fields.values() if f.alias)
)
def test_every_setting_is_in_the_readme(variable: str) -> None:
    """Each environment variable the settings read appears in the README."""
    assert f"`{variable}`" in README


def test_the_readme_has_at_least_six_sql_examples() -> None:
    """The SQL contract section carries at least six example reporting queries."""
    assert len(SQL_EXAMPLES) >= 6


@pytest.mark.parametrize(
    "query", SQL_EXAMPLES, ids=[f"sql-{i}" for i, _ in enumerate(SQL_EXAMPLES)]
)
def test_each_readme_query_runs_as_written(
    query: str, engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    """Each SQL example in the README runs as written on a database loaded by a sync."""
    assert sync(engine, make_settings()).status == "succeeded"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(query).all()
    assert isinstance(rows, list)
