"""One job per user and Idempotency-Key (issue 15): two requests racing with one key can no longer
both insert; the loser reads the winner's job (worker.store.IdempotencyKeyTaken).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The race made some of these already: the oldest job keeps the key, the others lose it (they
# stay, with their reports), or the index could not be made.
FORGET_REPEATED_KEYS = """
UPDATE jobs SET idempotency_key = NULL
WHERE idempotency_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM jobs AS older
    WHERE older.created_by = jobs.created_by AND older.idempotency_key = jobs.idempotency_key
      AND (older.created_at < jobs.created_at OR (older.created_at = jobs.created_at AND older.id < jobs.id))
)
"""


def upgrade() -> None:
    op.execute(FORGET_REPEATED_KEYS)
    op.create_index("uq_jobs_created_by_idempotency_key", "jobs", ["created_by", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_jobs_created_by_idempotency_key", table_name="jobs")
