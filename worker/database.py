"""The SQL engine that the job store, the accounts and the page cache share: a SQLite file by
default, PostgreSQL (or any server SQLAlchemy speaks to) by `DATABASE_URL`.

SQLite serves 32 worker threads and the API's processes at once only when tuned for it: WAL,
a busy timeout, and a process's writers taking turns (`OneWriterAtATime`)."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

logger = logging.getLogger(__name__)


def create_database_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            # Only its owner reads the data folder: the reports, the accounts, the secret key.
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A server database's connections can go stale (a restart, an idle timeout): test each one
    # on checkout. A SQLite file cannot, and the test would cost a statement per transaction.
    engine = create_engine(database_url, pool_pre_ping=not database_url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    """WAL lets readers (the API) run while a writer (a worker) commits; busy_timeout makes a
    writer wait for the lock instead of failing. And a process's writers take turns on a lock of
    their own, because SQLite's busy wait sleeps up to 100 ms a try even after the lock is free:
    without the turns, 32 worker threads put submissions over their p99 target (bench/RESULTS.md,
    "The SQLite writer queue, measured")."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=15000")  # first: switching to WAL may wait for a lock
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL is still crash-safe for the database; it skips an fsync per commit,
        # which otherwise dominates the time of a submission.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    OneWriterAtATime(engine)


class OneWriterAtATime:
    """A connection takes the process's write turn at its first write (where pysqlite begins the
    transaction) and gives it back when it returns to the pool: committed, rolled back, broken,
    or collected unclosed, from whatever thread. A writer that waits `WAIT` seconds goes ahead on
    SQLite's own lock, and says so in the log."""

    WAIT = 30.0

    def __init__(self, engine: Engine) -> None:
        self._turn = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._take_turn)
        event.listen(engine, "checkin", self._give_turn_back)
        # A child forked while a thread of its parent wrote (a prefork pool's) starts with the turn free.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (me := ref()) is not None and me._free())

    def _free(self) -> None:
        self._turn = threading.Lock()

    def _take_turn(self, conn: Connection, _cursor: object, statement: str, *_: object) -> None:
        if conn.info.get(_HOLDS_TURN) or statement.lstrip()[:6].upper() not in _WRITE_VERBS:
            return
        if self._turn.acquire(timeout=self.WAIT):
            conn.info[_HOLDS_TURN] = True
        else:
            logger.warning("a SQLite writer waited %.0f s for its turn; going ahead on SQLite's lock", self.WAIT)

    def _give_turn_back(self, _dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        if record.info.pop(_HOLDS_TURN, False):
            self._turn.release()


_HOLDS_TURN = "holds_sqlite_write_turn"
# The first six letters of a statement that writes ("REPLAC" for REPLACE).
_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLAC"})
