"""jobs: how many of a report's figures were looked up in their sources, and how many were not there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

The report's assembly looks every figure (money, percentages, head and customer counts, founding
and round years) up in the sources its sentence cites (`worker.sources.fact_check`), marks those
not found, and stores the counts here for `/status` and the report page. Reports written before
this revision were not checked: their counts stay NULL, and `/status` leaves `figures` out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("figures_checked", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("figures_unsupported", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("figures_unsupported")
        batch.drop_column("figures_checked")
