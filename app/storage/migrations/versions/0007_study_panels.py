"""Reader studies of explanations: arms list their panels, answers keep marks and dwell.

``arms`` gains ``panels`` (the panels the arm shows; NULL for arms stored before, which
read them from ``show_prediction`` / ``show_explanations``) and ``method`` (the map method
of its heat maps); ``answers`` gains ``marks`` (what convinced the reader) and
``panel_seconds`` (how long each panel was open); ``reading_events`` holds each panel
opened, closed or toggled, timed by the server.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("arms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("panels", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("method", sa.String(length=100), nullable=True))
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("marks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("panel_seconds", sa.JSON(), nullable=True))
    op.create_table(
        "reading_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reading_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reading_events_assignment_id"), ["assignment_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema (marks, dwell and events are lost)."""
    with op.batch_alter_table("reading_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_events_assignment_id"))
    op.drop_table("reading_events")
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_column("panel_seconds")
        batch_op.drop_column("marks")
    with op.batch_alter_table("arms", schema=None) as batch_op:
        batch_op.drop_column("method")
        batch_op.drop_column("panels")
