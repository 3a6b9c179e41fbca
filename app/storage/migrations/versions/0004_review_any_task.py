"""Review runs of any task: the answers themselves, correct/wrong outcomes, the labels file.

``case_results`` gains ``truth_answer`` and ``predicted_answer`` (the answers as strings;
``truth`` / ``prediction`` stay integers: 0/1 for a yes/no task, answer indices otherwise)
and its ``outcome`` widens to hold "correct" / "wrong"; ``review_runs`` gains
``labels_file`` (the labels.csv a run's truth comes from; NULL: the cohort's truth.json).
Existing rows keep working: their answers are NULL and read as yes/no from 0/1.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("truth_answer", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("predicted_answer", sa.String(length=200), nullable=True))
        batch_op.alter_column(
            "outcome",
            existing_type=sa.String(length=2),
            type_=sa.String(length=10),
            existing_nullable=False,
        )
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("labels_file", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    """Downgrade schema (runs of tasks other than yes/no lose their outcomes)."""
    op.execute(sa.text("DELETE FROM case_results WHERE outcome IN ('correct', 'wrong')"))
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.drop_column("labels_file")
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        batch_op.alter_column(
            "outcome",
            existing_type=sa.String(length=10),
            type_=sa.String(length=2),
            existing_nullable=False,
        )
        batch_op.drop_column("predicted_answer")
        batch_op.drop_column("truth_answer")
