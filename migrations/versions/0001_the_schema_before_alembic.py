"""The schema as it stood when the project moved to Alembic: the job tables and the accounts.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

On an empty database this creates every table. A database made before Alembic (by
`JobStore.create_schema`, which every process ran at start) has the tables but no
`alembic_version`, so Alembic runs this revision on it too; it then adopts the tables instead of
creating them, keeping every row, and brings each to what is written here:

- a table that a newer version added (the accounts, documents, research, deliveries) is created;
- a column that a newer version added is added, as `create_schema` would have (nullable: the table
  has rows already). The columns of this kind that the models declare NOT NULL (`ADDED_NOT_NULL`)
  get their NULLs replaced by the models' default and are then made NOT NULL, whether added here
  or earlier by `create_schema`, which added every column nullable;
- an index that `create_schema` never made (it created indexes only with their table, so a column
  it added later, such as `jobs.created_by`, had none) is created.

Alembic then records this revision. Adopting in the revision itself, rather than in a separate
`alembic stamp`, keeps upgrading one command for every database: `alembic upgrade head`.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Timezone-aware on PostgreSQL; SQLite keeps the text (worker.models.UTCDateTime adds the zone back).
UTC_DATETIME = sa.DateTime(timezone=True)
STARTUP_CHARS = 800


def jobs() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("startup", sa.String(STARTUP_CHARS), nullable=False),
        sa.Column("startup_key", sa.String(STARTUP_CHARS), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("progress_step", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("progress_label", sa.String(100), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", UTC_DATETIME, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("report_md", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(200), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("unpriced_calls", sa.Integer(), nullable=False),
        sa.Column("calls_sent", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("cancelled_by", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("retried_as", sa.String(36), nullable=True),
        sa.Column("providers_down", sa.String(200), nullable=True),
        sa.Column("website", sa.String(2000), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("citations_removed", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    ]


def job_steps() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("citations_removed", sa.Integer(), nullable=True),
        sa.Column("paid", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "key"),
    ]


def job_documents() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    ]


def job_research() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    ]


def task_deliveries() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("task_key", sa.String(40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "task_key"),
    ]


def users() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    ]


def api_tokens() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    ]


# Every table, a table before those that refer to it.
TABLES: dict[str, Callable[[], list[sa.Column | sa.Constraint]]] = {
    "jobs": jobs,
    "job_steps": job_steps,
    "job_documents": job_documents,
    "job_research": job_research,
    "task_deliveries": task_deliveries,
    "users": users,
    "api_tokens": api_tokens,
}

INDEXES: dict[str, dict[str, list[str]]] = {
    "jobs": {
        "ix_jobs_startup_key": ["startup_key"],
        "ix_jobs_state": ["state"],
        "ix_jobs_created_at": ["created_at"],
        "ix_jobs_created_by": ["created_by"],
        "ix_jobs_idempotency_key": ["idempotency_key"],
    },
    "job_documents": {"ix_job_documents_job_id": ["job_id"]},
    "api_tokens": {"ix_api_tokens_user_id": ["user_id"]},
}

# Columns declared NOT NULL that versions before Alembic added to existing tables (nullable), and
# what their NULLs become: the models' defaults; a startup's key is its name in lower case (the
# models' `startup_key` also folds spaces, which SQL cannot do as simply; only search uses it).
ADDED_NOT_NULL: dict[str, dict[str, Callable[[sa.TableClause], object]]] = {
    "jobs": {
        "startup_key": lambda jobs: sa.func.lower(jobs.c.startup),
        "retries": lambda _: 0,
        "input_tokens": lambda _: 0,
        "output_tokens": lambda _: 0,
        "cost_usd": lambda _: 0.0,
        "unpriced_calls": lambda _: 0,
        "deliveries": lambda _: 0,
    },
    "job_steps": {"input_tokens": lambda _: 0, "output_tokens": lambda _: 0},
}


def upgrade() -> None:
    existing = set() if context.is_offline_mode() else set(sa.inspect(op.get_bind()).get_table_names())
    for name, definition in TABLES.items():
        if name in existing:
            adopt(name, definition())
            continue
        op.create_table(name, *definition())
        for index, columns in INDEXES.get(name, {}).items():
            op.create_index(index, name, columns)


def adopt(name: str, definition: list[sa.Column | sa.Constraint]) -> None:
    """Bring a table made before Alembic to this revision, keeping its rows (see above)."""
    inspector = sa.inspect(op.get_bind())
    present = {column["name"]: column for column in inspector.get_columns(name)}
    columns = [item for item in definition if isinstance(item, sa.Column)]
    for column in columns:
        if column.name not in present:
            op.add_column(name, sa.Column(column.name, column.type, nullable=True))
    backfill = ADDED_NOT_NULL.get(name, {})
    loose = [c for c in columns if c.name in backfill and present.get(c.name, {"nullable": True})["nullable"]]
    if loose:
        table = sa.table(name, *(sa.column(c.name) for c in columns))
        for column in loose:
            value = backfill[column.name](table)
            op.execute(table.update().where(table.c[column.name].is_(None)).values({column.name: value}))
        with op.batch_alter_table(name) as batch:
            for column in loose:
                batch.alter_column(column.name, existing_type=column.type, nullable=False)
    indexed = {index["name"] for index in inspector.get_indexes(name)}
    for index, index_columns in INDEXES.get(name, {}).items():
        if index not in indexed:
            op.create_index(index, name, index_columns)


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
