"""The default error taxonomy for review: seeded once, then edited by reviewers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:35:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_TAGS = (
    ("missed reduced EF", "the echo shows a reduced ejection fraction the model did not weigh"),
    ("label noise", "the planted or recorded label looks wrong for this case"),
    ("modality missing", "the deciding modality is absent from the case"),
    ("spurious lab cue", "a lab value (e.g. NT-proBNP with kidney disease) misled the model"),
    ("confounder", "COPD, pneumonia or kidney disease mimicked heart failure"),
)

tags = sa.table(
    "tags",
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Seed the default tags."""
    now = datetime.now(UTC)
    op.bulk_insert(
        tags, [{"name": n, "description": d, "created_at": now} for n, d in DEFAULT_TAGS]
    )


def downgrade() -> None:
    """Remove the default tags that are still unchanged."""
    op.execute(tags.delete().where(tags.c.name.in_([n for n, _ in DEFAULT_TAGS])))
