"""phone_number_digests: the digest of the listing element each active number was last read from.

A sync skips normalizing elements whose digest is here (etl.transform.digest).
A table of its own, not a column of phone_numbers, so that refreshing a digest
(the provider's text changed but no attribute did, or a new normalizer) never
writes a phone_numbers row (SPEC §5.3). No index: every access is one
account's rows, set-based. Numbers loaded before this revision have no row
here and are normalized until their next load gives them one.

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
    """Create the table."""
    op.create_table(
        "phone_number_digests",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("e164", sa.Text(), nullable=False),
        sa.Column("raw_digest", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("phone_number_digests")
