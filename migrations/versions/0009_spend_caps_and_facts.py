"""a report's cost cap and whether it stopped at it; its key facts as data.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

`jobs.max_cost_usd` is the cap the report was asked to stay under (the request's, never above
`MAX_COST_PER_REPORT_USD`; NULL for no cap). `jobs.partial` is true for a report finished with
what it had when its next call would have passed the cap: *Continue*, with a higher cap, resumes it
from its checkpoints. `jobs.facts` holds the report's key facts as JSON (`worker.facts`), for the
API, the comparison table and the exports.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("max_cost_usd", sa.Float(), nullable=True))
        batch.add_column(sa.Column("partial", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("facts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("facts")
        batch.drop_column("partial")
        batch.drop_column("max_cost_usd")
