"""users: a session version, so that log-out and a password change end every session of the user.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A log-in session names its user as "<id>:<session_version>" (Flask-Login's alternative id,
`webapp.accounts.Analyst.get_id`); bumping the version makes every cookie that names the old one
worthless. Existing users start at 0, so the sessions signed before this revision (which name the
id alone) are refused once and their users log in again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NOT NULL with a server default: the rows already there get 0 on SQLite and PostgreSQL alike.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
