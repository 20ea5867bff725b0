"""A user's live jobs and newest jobs found through indexes on (created_by, state) and
(created_by, created_at), in place of the index on created_by alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

With only `ix_jobs_created_by`, SQLite answered "how many live jobs has this user" (asked on every
submission) and "is this startup already being written for this user" by reading every job the
user ever asked for. At 10,000 jobs of one user: 5.0 and 3.3 ms, against 0.5 and 0.7 ms with these
indexes; the user's 20 newest jobs 19.3 ms against 0.9 (`bench.run_bench --scenario history`,
bench/RESULTS.md). Both new indexes start with created_by, so they serve every lookup the old one did.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created_by_state", "jobs", ["created_by", "state"])
    op.create_index("ix_jobs_created_by_created_at", "jobs", ["created_by", "created_at"])
    op.drop_index("ix_jobs_created_by", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_created_by", "jobs", ["created_by"])
    op.drop_index("ix_jobs_created_by_created_at", table_name="jobs")
    op.drop_index("ix_jobs_created_by_state", table_name="jobs")
