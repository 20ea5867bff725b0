"""The database's schema, kept by Alembic (`migrations/`): bring it up to date, and refuse to run
on one that is not.

    .venv/bin/python -m worker.migrate     # what ./run.sh runs: `alembic upgrade head` on the
                                           # database the settings name (DATABASE_URL, .env, or
                                           # the SQLite file in the data directory)

The API and the worker never change the schema themselves: several of them start at once, on
several machines, and a migration must run once, before all of them.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from config import PROJECT_ROOT, Settings

# The key of the PostgreSQL advisory lock that one upgrade at a time holds (migrations/env.py).
MIGRATION_LOCK = 0x5EB0_0714
UPGRADE_COMMAND = "`.venv/bin/alembic upgrade head` (./run.sh does it for you)"


class DatabaseNotCurrent(RuntimeError):
    """The database's schema is not the one this code was written for."""


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's configuration (alembic.ini), for the database at `database_url` if given, else
    for the one the settings name (migrations/env.py reads them)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def ensure_sqlite_folder(database_url: str) -> None:
    """SQLite creates the file but not its folder (the data directory, on a first start), which
    only its owner may read: it holds the reports, the accounts and the secret key."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def upgrade(database_url: str) -> None:
    """Bring the database up to the newest revision (a database made before Alembic included:
    see the first revision)."""
    command.upgrade(alembic_config(database_url), "head")


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def require_current(engine: Engine) -> None:
    """Raise `DatabaseNotCurrent`, in one sentence saying what to run, unless the database is at
    the newest revision. Run once as a process starts: it reads the version table, nothing else."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise DatabaseNotCurrent(
            f"The database {engine.url} has no schema revision (it is empty, or was made before the"
            f" migrations) but this code needs revision {head}: run {UPGRADE_COMMAND}."
        )
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(current)
    except CommandError:
        raise DatabaseNotCurrent(
            f"The database {engine.url} is at revision {current}, which this code does not know (newer"
            f" code has migrated it): update this copy of the code to the version that made {current}."
        ) from None
    raise DatabaseNotCurrent(
        f"The database {engine.url} is at revision {current} but this code needs {head}: run {UPGRADE_COMMAND}."
    )


def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def main() -> int:
    database_url = Settings().database_url
    ensure_sqlite_folder(database_url)
    before = current_revision(database_url)
    upgrade(database_url)
    where = f"the database {make_url(database_url)}"
    if before == head_revision():
        print(f"[migrate] {where} is at revision {before}: nothing to upgrade")
    else:
        print(f"[migrate] {where} was upgraded from revision {before or '(none)'} to {head_revision()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
