"""phone_numbers.raw_digest: the digest of the element text each row was normalized from.

A sync skips normalizing elements whose digest matches an active row's
(etl.transform.digest). Rows loaded before this revision have none and are
normalized as before; each gets its digest at its next sync.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (no rewrite of existing rows)."""
    op.add_column("phone_numbers", sa.Column("raw_digest", sa.LargeBinary()))


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("phone_numbers", "raw_digest")
