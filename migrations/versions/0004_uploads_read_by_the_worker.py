"""job_documents: the uploaded PDF itself, read later by the worker; the text only for old rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Reading a PDF inside the web request let a file of a few KB hold a gunicorn process for minutes.
The request now stores the file as it came (`data`) and the worker reads it in a child process
with limits (`worker.sources.documents`). Rows stored before this revision keep the text read
then and have no `data`; new rows have `data` and no `text`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_documents") as batch:
        batch.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
        batch.alter_column("text", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # Documents not read yet have no text to go back to: they leave with the column.
    op.execute(sa.text("DELETE FROM job_documents WHERE text IS NULL"))
    with op.batch_alter_table("job_documents") as batch:
        batch.alter_column("text", existing_type=sa.Text(), nullable=False)
        batch.drop_column("data")
