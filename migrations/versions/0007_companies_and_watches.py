"""companies, watches, changes, notifications and deliveries; jobs as versions of a company.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

A finished report becomes a version of a company (`jobs.company_id`); a user can watch a company
(`watches`), whose re-run schedule is kept on the company (`every_seconds`, `next_run_at`); a new
version's differences from the one before are a `changes` row, shown to watchers
(`notifications`) and sent to them by e-mail and webhook (`deliveries`, one row per message with
its attempts). Reports written before this revision belong to no company until they are run again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(800), nullable=False),
        sa.Column("name", sa.String(800), nullable=False),
        sa.Column("website", sa.String(2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_companies_next_run_at", "companies", ["next_run_at"])
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_watches_user_id", "watches", ["user_id"])
    op.create_index("ix_watches_company_id", "watches", ["company_id"])
    op.create_index("uq_watches_user_company", "watches", ["user_id", "company_id"], unique=True)
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("previous_job_id", sa.String(36), nullable=False),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("job_id"),
    )
    op.create_index("ix_changes_company_id", "changes", ["company_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("change_id", sa.Integer(), sa.ForeignKey("changes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notifications_user_id", "notifications", ["user_id"])
    op.create_index("uq_notifications_user_change", "notifications", ["user_id", "change_id"], unique=True)
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer(), sa.ForeignKey("changes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deliveries_change_id", "deliveries", ["change_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("company_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("previous_job_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("trigger", sa.String(8), nullable=True))
        batch.create_index("ix_jobs_company_id", ["company_id"])
        batch.create_foreign_key("fk_jobs_company_id_companies", "companies", ["company_id"], ["id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("webhook_url", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("webhook_format", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("webhook_format")
        batch.drop_column("webhook_url")
        batch.drop_column("email")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_company_id_companies", type_="foreignkey")
        batch.drop_index("ix_jobs_company_id")
        batch.drop_column("trigger")
        batch.drop_column("previous_job_id")
        batch.drop_column("company_id")
    for name in ("deliveries", "notifications", "changes", "watches", "companies"):
        op.drop_table(name)
