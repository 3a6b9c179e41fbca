"""Review results keep what went wrong reading their case's files; runs keep their caveat.

``case_results`` gains ``input_warnings`` (the case's ingest warnings: files not loaded, with
why, and files read with a warning; NULL for rows stored before they were kept), and
``review_runs`` gains ``model_caveat`` (the caveat of the model that made the run's
predictions, shown above them; NULL for runs stored before it was kept).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 21:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_warnings", sa.JSON(), nullable=True))
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_caveat", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema (results forget their input warnings, runs their caveat)."""
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.drop_column("model_caveat")
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        batch_op.drop_column("input_warnings")
