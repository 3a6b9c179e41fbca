"""Review runs with explanations: each result's bundle in the content-keyed store.

``case_results`` gains ``bundle_key`` (the :mod:`fuselens.explain.bundle_store` key of the
case's explanation; NULL: reviewed without one) and ``review_runs`` gains ``bundle_store``
(the store folder the run wrote to) and ``methods`` (the map methods its bundles hold).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bundle_key", sa.String(length=64), nullable=True))
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bundle_store", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("methods", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema (results forget their bundles; the store's files stay)."""
    with op.batch_alter_table("review_runs", schema=None) as batch_op:
        batch_op.drop_column("methods")
        batch_op.drop_column("bundle_store")
    with op.batch_alter_table("case_results", schema=None) as batch_op:
        batch_op.drop_column("bundle_key")
