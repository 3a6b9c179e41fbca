"""Review runs get a unique name, so `fuselens review --run-name` resumes the same run.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_review_runs_name"), ["name"], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_runs_name"))
        batch_op.drop_column("name")
