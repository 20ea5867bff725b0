"""Job rows on SQLite and (with TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, update
from sqlalchemy.exc import IntegrityError

from worker.models import Job, JobState
from worker.pipeline import Checkpoint, Progress
from worker.store import JobStore


@pytest.fixture
def store(database_url: str) -> JobStore:
    store = JobStore(database_url)
    yield store
    store.dispose()


NAMES = ["<script>alert(1)</script>", "Ünïcødé GmbH & Co. „KG“", "株式会社テスト", "a" * 200]


@pytest.mark.parametrize("name", NAMES)
def test_names_round_trip_exactly(store: JobStore, name: str) -> None:
    job = store.create_job(name)
    assert store.get_job(job.id).startup == name


def test_a_job_goes_through_its_states(store: JobStore) -> None:
    job = store.create_job("Acme")
    fetched = store.get_job(job.id)
    assert fetched.state == JobState.PENDING and fetched.created_at.tzinfo is not None

    store.mark_started(job.id, worker="w1@host", attempt=1)
    assert store.get_job(job.id).state == JobState.STARTED
    store.mark_progress(job.id, Progress(step=3, total=13, label="Problem & customer"))
    got = store.get_job(job.id)
    assert (got.state, got.progress_step, got.progress_total, got.progress_label) == (
        JobState.PROGRESS,
        3,
        13,
        "Problem & customer",
    )
    retry_at = datetime.now(UTC) + timedelta(seconds=30)
    store.mark_retry(job.id, error="Rate limited", retry_at=retry_at)
    got = store.get_job(job.id)
    assert got.state == JobState.RETRY and abs((got.retry_at - retry_at).total_seconds()) < 1

    store.mark_started(job.id, worker="w2@host", attempt=2)
    store.mark_succeeded(job.id, report_md="# Report", provider="offline/demo")
    done = store.get_job(job.id)
    assert (done.state, done.report_md, done.attempts, done.worker, done.error) == (
        JobState.SUCCESS,
        "# Report",
        2,
        "w2@host",
        None,
    )
    assert done.duration_seconds is not None and done.duration_seconds >= 0


def test_a_task_s_deliveries_are_counted_and_a_finished_job_stays_as_it_ended(store: JobStore) -> None:
    """Every delivery counts (the crash-loop guard reads the count), per task; only a live job
    takes the worker, the attempts and the state STARTED."""
    job = store.create_job("Acme")
    assert [store.mark_started(job.id, worker="w1@host", attempt=3, task_key="plan") for _ in range(3)] == [1, 2, 3]
    assert store.mark_started(job.id, worker="w2@host", attempt=2, task_key="sections") == 1
    got = store.get_job(job.id)
    assert (got.state, got.worker, got.attempts, got.deliveries) == (JobState.STARTED, "w2@host", 3, 4)
    started_at = got.started_at

    store.mark_cancelled(job.id, by="alice")
    assert store.mark_started(job.id, worker="w3@host", attempt=5, task_key="plan") == 4
    got = store.get_job(job.id)
    assert (got.state, got.worker, got.attempts, got.started_at, got.deliveries) == (
        JobState.REVOKED,
        "w2@host",
        3,
        started_at,
        5,
    )
    assert store.mark_started("no-such-job", worker="w1@host", attempt=1, task_key="plan") == 0


def test_a_late_failure_never_undoes_a_success(store: JobStore) -> None:
    job = store.create_job("Acme")
    store.mark_succeeded(job.id, report_md="# Report", provider="p")
    store.mark_failed(job.id, error="late duplicate")
    assert store.get_job(job.id).state == JobState.SUCCESS


def test_checkpoints_are_stored_and_counted(store: JobStore) -> None:
    job = store.create_job("Acme")
    store.save_checkpoint(job.id, Checkpoint("plan", "the plan", "offline", "demo"))
    store.save_checkpoint(job.id, Checkpoint("snapshot", "the snapshot", "offline", "demo"))
    assert store.load_checkpoints(job.id) == {
        "plan": Checkpoint("plan", "the plan", "offline", "demo"),
        "snapshot": Checkpoint("snapshot", "the snapshot", "offline", "demo"),
    }
    assert store.get_job(job.id).calls == 2
    other = store.create_job("Other")
    assert store.load_checkpoints(other.id) == {}


def test_recent_jobs_are_newest_first_and_limited(store: JobStore) -> None:
    ids = [store.create_job(f"S{i}").id for i in range(5)]
    recent = store.recent_jobs(3)
    assert [j.id for j in recent] == ids[::-1][:3]


def test_delete_removes_the_job_and_its_steps(store: JobStore) -> None:
    job = store.create_job("Acme")
    store.save_checkpoint(job.id, Checkpoint("plan", "x", "p", "m"))
    store.delete_job(job.id)
    assert store.get_job(job.id) is None and store.load_checkpoints(job.id) == {}


def test_failure_records_the_reason(store: JobStore) -> None:
    job = store.create_job("Acme")
    store.mark_failed(job.id, error="OpenAI rejected the API key: check OPENAI_API_KEY.")
    got = store.get_job(job.id)
    assert got.state == JobState.FAILURE and "OPENAI_API_KEY" in got.error and got.finished_at


def test_sqlite_lets_readers_in_while_one_writes_and_makes_writers_wait(tmp_path) -> None:
    """WAL and a busy timeout: what the worker's threads and the API need on one SQLite file."""
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
    store.dispose()


@pytest.fixture
def impatient_sqlite(tmp_path, migrated) -> JobStore:
    """A SQLite store whose connections never wait for the database's own lock (busy_timeout=0):
    a write that finds another in progress fails at once with "database is locked"."""
    store = JobStore(migrated(f"sqlite:///{tmp_path / 'jobs.db'}"))

    @event.listens_for(store.engine, "connect")
    def _impatient(dbapi_connection, _record) -> None:  # runs after the store's own settings
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    store.dispose()  # the connections made so far had the patient setting
    yield store
    store.dispose()


def test_one_process_s_writers_take_turns_instead_of_meeting_sqlite_s_lock(impatient_sqlite: JobStore) -> None:
    """32 threads write at once (a worker's pool), each holding its transaction open a moment.
    They queue on the store's own lock, so not one meets SQLite's (which, with the usual
    busy_timeout, would make it sleep 1, 2, 5, 10 … ms while the lock sits free)."""
    store = impatient_sqlite
    jobs = [store.create_job(f"Acme {i}") for i in range(32)]
    errors: list[BaseException] = []

    def write(job_id: str) -> None:
        try:
            for _ in range(5):
                with store.session() as session:
                    session.execute(update(Job).where(Job.id == job_id).values(attempts=Job.attempts + 1))
                    time.sleep(0.002)  # the transaction stays open: others arrive meanwhile
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(job.id,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:3]
    assert [store.get_job(job.id).attempts for job in jobs] == [5] * 32


def test_a_failed_write_gives_the_turn_back(store: JobStore) -> None:
    """A write that fails (here a duplicate key) rolls back and lets the next writer in."""
    job = store.create_job("Acme")
    with pytest.raises(IntegrityError):
        with store.session() as session:
            session.add(Job(id=job.id, startup="Again", startup_key="again", state=JobState.PENDING))
    other = threading.Thread(
        target=store.mark_progress, args=(job.id, Progress(step=1, total=13, label="Plan")), daemon=True
    )
    other.start()
    other.join(timeout=20)
    assert not other.is_alive(), "the next writer never got its turn"
    assert store.get_job(job.id).progress_step == 1


def test_a_connection_left_open_gives_the_turn_back_when_collected(store: JobStore) -> None:
    """A writer whose connection is never closed (a bug, but one that must not stop every other
    writer in the process): when the garbage collector returns it to the pool, the turn passes."""
    job = store.create_job("Acme")
    leaked, wrote, finish = [], threading.Event(), threading.Event()

    def leak() -> None:
        connection = store.engine.connect()
        connection.execute(update(Job).where(Job.id == job.id).values(attempts=1))
        connection.rollback()
        leaked.append(connection)  # never closed
        del connection
        wrote.set()
        finish.wait(30)  # alive meanwhile: no later thread can be given its id

    writer = threading.Thread(target=leak, daemon=True)
    writer.start()
    assert wrote.wait(10)
    leaked.clear()  # collected here, in another thread than the writer's
    gc.collect()
    other = threading.Thread(target=store.mark_progress, args=(job.id, Progress(1, 13, "Plan")), daemon=True)
    other.start()
    other.join(timeout=20)
    finish.set()
    assert not other.is_alive(), "the next writer never got its turn"


def test_live_startup_keys_names_the_startups_being_written_in_one_query(store: JobStore) -> None:
    """What a budget check counts as joining (`JobService.count_starting`): live jobs only, any
    case, narrowed to an owner when given."""
    store.create_job("Acme Robotics", created_by="ann")
    done = store.create_job("Globex", created_by="ann")
    store.mark_failed(done.id, error="The provider failed.")
    store.create_job("Initech", created_by="bob")
    keys = ["acme robotics", "globex", "initech", "umbrella"]
    assert store.live_startup_keys(keys) == {"acme robotics", "initech"}
    assert store.live_startup_keys(keys, owner="ann") == {"acme robotics"}
    assert store.live_startup_keys([]) == set()


def _plans(store: JobStore, read: Callable[[], object]) -> list[str]:
    """SQLite's query plan of each statement that `read` runs on `store`."""
    statements: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        read()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    with store.engine.connect() as connection:
        return [
            " / ".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in statements
            if sql.lstrip().upper().startswith("SELECT")
        ]


def test_a_users_live_and_newest_jobs_are_found_by_index_whatever_their_history(database_url: str) -> None:
    """What every submission asks (how many live jobs has this user, is this startup being written
    for them) and the user's newest jobs are read through the (created_by, …) indexes, not by
    reading every job the user ever asked for (revision 0010; bench/RESULTS.md, "A user's history")."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the plans are SQLite's; PostgreSQL plans by its own statistics")
    store = JobStore(database_url)
    try:
        for i in range(3):
            store.create_job(f"Old {i}", created_by="ana")
        reads = {
            "ix_jobs_created_by_state": [
                lambda: store.count_live("ana"),
                lambda: store.find_live("Old 1", owner="ana"),
            ],
            "ix_jobs_created_by_created_at": [lambda: store.recent_jobs(20, owner="ana")],
        }
        for index, calls in reads.items():
            for read in calls:
                plans = _plans(store, read)
                assert plans and all(index in plan and "B-TREE FOR ORDER BY" not in plan for plan in plans), plans
    finally:
        store.dispose()
