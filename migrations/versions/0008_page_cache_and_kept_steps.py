"""the page cache for conditional re-fetches; a re-run's steps kept from the version before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

`page_cache` holds each fetched page's validators (ETag, Last-Modified), a hash of its body and
the page as extracted, so that a re-run asks with If-None-Match / If-Modified-Since and reuses the
extraction of a page that did not change. `job_steps.unchanged_since` marks a re-run's step whose
sources were the same as the version before's: its text was copied, not paid for, and the report
says since when it is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_cache",
        sa.Column("url_hash", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(500), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("page", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("job_steps") as batch:
        batch.add_column(sa.Column("unchanged_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_steps") as batch:
        batch.drop_column("unchanged_since")
    op.drop_table("page_cache")
