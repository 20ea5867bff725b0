"""jobs: what to do when several companies share a name, and the candidates while the job asks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

A job whose name matches several companies stops before any model call in the state NEEDS_INPUT
(a state is a string: no schema change for it), with the companies it found in `candidates` and
the time it asked in `asked_at`; `on_ambiguous` is what the submission asked for in that case.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("on_ambiguous", sa.String(8), nullable=True))
        batch.add_column(sa.Column("candidates", sa.Text(), nullable=True))
        batch.add_column(sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A job still asking has no state the older code knows: it is cancelled, saying why.
    op.execute(
        sa.text(
            "UPDATE jobs SET state = 'REVOKED', error = 'Cancelled by a downgrade while it asked which company "
            "was meant.' WHERE state = 'NEEDS_INPUT'"
        )
    )
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("asked_at")
        batch.drop_column("candidates")
        batch.drop_column("on_ambiguous")
