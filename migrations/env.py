"""Alembic's environment: the database is the app's (`Settings().database_url`, or the URL a caller
such as `worker.migrate.upgrade` or the tests hands over), the target is `worker.models`."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, func, select

from config import Settings
from worker.migrate import MIGRATION_LOCK, ensure_sqlite_folder
from worker.models import Base

config = context.config
# Only the alembic command line configures logging: called from the app or the tests, it must not
# replace their handlers.
if config.cmd_opts is not None and config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("database_url") or Settings().database_url


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = database_url()
    ensure_sqlite_folder(url)
    # A plain engine, not JobStore's: SQLite's foreign keys stay off (the default), so a batch
    # operation that copies and drops a table (SQLite cannot alter a column in place) never
    # cascades the drop to the rows that point at it.
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite alters a table by copying it: batch mode does that for each op.
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Machines started together (each run.sh upgrades) take turns: the one that
                    # waited reads the revision after the first has committed, and has nothing to do.
                    connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
