"""The Alembic migrations on SQLite and (with TEST_DATABASE_URL) PostgreSQL: they make what the
models declare, adopt the databases made before Alembic without losing a row, and the API and the
worker refuse a database that is not at the newest revision."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, create_engine, func, insert, inspect, select, table, text
from sqlalchemy.engine import Engine, make_url
from werkzeug.security import generate_password_hash

from config import PROJECT_ROOT
from tests.conftest import make_settings, worker_env
from webapp import create_app
from webapp.accounts import Accounts
from worker.migrate import (
    MIGRATION_LOCK,
    DatabaseNotCurrent,
    alembic_config,
    head_revision,
    require_current,
    upgrade,
)
from worker.models import Base, JobState, JobStep, User
from worker.research import Document, Material
from worker.store import JobStore

FROZEN = Path(__file__).parent / "schema_before_alembic"


def differences(engine: Engine) -> list[object]:
    """What autogenerate would write into a new revision: nothing, if models and database agree."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def revision_of(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def run_sql_file(engine: Engine, name: str) -> None:
    """Run a frozen schema file (`<name>.<dialect>.sql`, or `<dialect>.sql` for today's)."""
    path = FROZEN / (f"{name}.{engine.dialect.name}.sql" if name else f"{engine.dialect.name}.sql")
    body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
    with engine.begin() as connection:
        for statement in filter(str.strip, body.split(";")):
            connection.execute(text(statement))


def add_user(engine: Engine, username: str, password: str) -> None:
    """A user as the schemas before revision 0002 stored one (the models name a column they lack)."""
    users = table("users", column("username"), column("password_hash"), column("created_at"))
    with engine.begin() as connection:
        row = {"username": username, "password_hash": generate_password_hash(password), "created_at": datetime.now(UTC)}
        connection.execute(insert(users).values(row))


def add_job(engine: Engine, job_id: str, *, created_at: str = "2026-11-28 10:00:00", **values: object) -> None:
    """A job row as every schema since the one before Alembic can hold it (the models name columns
    that older revisions lack, so they cannot write it)."""
    row = {"id": job_id, "startup": "Acme", "startup_key": "acme", "state": JobState.PENDING}
    row |= {"created_at": created_at, "updated_at": created_at, "progress_label": ""}
    counts = ("progress_step", "progress_total", "attempts", "calls", "retries", "input_tokens", "output_tokens")
    row |= dict.fromkeys((*counts, "cost_usd", "unpriced_calls", "deliveries"), 0) | values
    with engine.begin() as connection:
        connection.execute(insert(table("jobs", *map(column, row))), row)


def add_step(engine: Engine, job_id: str, key: str, text_: str) -> None:
    """A finished step as the schema before Alembic stored one (the models name a column it lacks,
    `unchanged_since` of revision 0008)."""
    row = {"job_id": job_id, "key": key, "text": text_, "provider": "offline", "model": "demo"}
    row |= {"input_tokens": 0, "output_tokens": 0, "created_at": datetime.now(UTC), "paid": True}
    with engine.begin() as connection:
        connection.execute(insert(table("job_steps", *map(column, row))), row)


@pytest.fixture
def engine(empty_database_url: str) -> Engine:
    engine = create_engine(empty_database_url)
    yield engine
    engine.dispose()


def test_the_migrations_make_what_the_models_declare(engine: Engine) -> None:
    """A model changed without a migration fails here: autogenerate would find the difference."""
    upgrade(engine.url.render_as_string(hide_password=False))
    assert differences(engine) == []
    assert revision_of(engine) == head_revision()
    require_current(engine)


def test_the_schema_deployed_before_alembic_is_adopted_with_its_rows(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    run_sql_file(engine, "")
    store = JobStore(url)
    add_job(engine, "job-1", startup="Before Alembic GmbH", created_by="analyst")
    add_step(engine, "job-1", "plan", "the plan")
    add_user(engine, "analyst", "a long enough password")  # as that version did: no session version yet
    store.dispose()
    with pytest.raises(DatabaseNotCurrent, match="no schema revision"):
        require_current(engine)

    upgrade(url)

    assert revision_of(engine) == head_revision()
    assert differences(engine) == []
    store = JobStore(url)
    assert store.get_job("job-1").startup == "Before Alembic GmbH"
    assert list(store.load_checkpoints("job-1")) == ["plan"]
    assert Accounts(store).authenticate("analyst", "a long enough password") is not None
    store.dispose()


def test_a_first_release_database_gains_what_later_versions_added(engine: Engine) -> None:
    """The oldest schema there is: two tables, and two columns added later by `create_schema`
    (nullable, without their index). The upgrade adds the rest, fills the NOT NULL columns' old
    rows with the models' defaults, and keeps every row, the steps that refer to a job included
    (SQLite alters a table by copying it, and dropping the old copy must not cascade)."""
    url = engine.url.render_as_string(hide_password=False)
    run_sql_file(engine, "first_release")
    job = {
        "id": "job-1",
        "startup": "Old Timer Inc",
        "state": JobState.SUCCESS,
        "created_at": "2026-11-28 10:00:00",
        "updated_at": "2026-11-28 10:05:00",
        "progress_step": 13,
        "progress_total": 13,
        "progress_label": "Summary",
        "attempts": 1,
        "report_md": "# Old Timer Inc",
        "calls": 13,
    }
    step = {"job_id": "job-1", "key": "plan", "text": "the plan", "provider": "offline", "model": "demo"}
    step["created_at"] = "2026-11-28 10:01:00"
    with engine.begin() as connection:
        connection.execute(insert(table("jobs", *map(column, job))), job)
        connection.execute(insert(table("job_steps", *map(column, step))), step)

    upgrade(url)

    assert differences(engine) == []
    jobs = Base.metadata.tables["jobs"]
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == "job-1")).one()
        steps = connection.execute(select(JobStep.__table__.c.key, JobStep.__table__.c.input_tokens)).all()
    assert (row.startup, row.report_md, row.calls) == ("Old Timer Inc", "# Old Timer Inc", 13)
    assert (row.startup_key, row.retries, row.deliveries, row.cost_usd, row.providers_down) == (
        "old timer inc",
        0,
        0,
        0.0,
        None,
    )
    assert steps == [("plan", 0)]
    store = JobStore(url)
    store.add_provider_down("job-1", "openai:transient")  # a column the first release did not have
    assert store.get_job("job-1").down_providers == ["openai:transient"]
    assert [job.id for job in store.search_reports("timer")[0]] == ["job-1"]
    store.dispose()


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    upgrade(url)
    with engine.begin() as connection:
        connection.execute(insert(User).values(username="u", password_hash="h", created_at=datetime.now(UTC)))
    upgrade(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT username FROM users")).scalars().all() == ["u"]


def test_the_api_refuses_an_empty_database_saying_what_to_run(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(DatabaseNotCurrent) as refusal:
        create_app(make_settings(database_url=url, data_dir=tmp_path))
    message = str(refusal.value)
    assert f"needs revision {head_revision()}" in message
    assert "run `.venv/bin/alembic upgrade head` (./run.sh does it for you)." in message
    assert message.count(". ") == 0  # one sentence
    with engine.connect() as connection:
        assert not connection.dialect.has_table(connection, "jobs")  # nothing made behind its back


def test_the_api_refuses_a_database_made_before_alembic_until_it_is_upgraded(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    run_sql_file(engine, "")
    settings = make_settings(database_url=url, data_dir=tmp_path, admin_password="a long enough password")
    with pytest.raises(DatabaseNotCurrent, match=r"no schema revision .* run `\.venv/bin/alembic upgrade head`"):
        create_app(settings)
    upgrade(url)
    create_app(settings).extensions["jobs"].workers.stop()


def test_the_api_refuses_a_database_behind_the_code_saying_what_to_run(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "0001")
    settings = make_settings(database_url=url, data_dir=tmp_path, admin_password="a long enough password")
    with pytest.raises(DatabaseNotCurrent) as refusal:
        create_app(settings)
    message = str(refusal.value)
    assert f"is at revision 0001 but this code needs {head_revision()}: run `.venv/bin/alembic upgrade head`" in message
    assert message.count(". ") == 0  # one sentence
    assert revision_of(engine) == "0001"  # nothing upgraded behind its back
    upgrade(url)
    create_app(settings).extensions["jobs"].workers.stop()


def test_the_session_version_is_added_to_existing_users_and_removed_again(engine: Engine) -> None:
    """Revision 0002 on a database with users: they keep their rows and passwords, at version 0."""
    url = engine.url.render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "0001")
    store = JobStore(url)
    add_user(engine, "analyst", "a long enough password")

    command.upgrade(alembic_config(url), "0002")

    with engine.connect() as connection:
        assert connection.execute(text("SELECT username, session_version FROM users")).all() == [("analyst", 0)]
    command.upgrade(alembic_config(url), "head")
    assert differences(engine) == []
    analyst = Accounts(store).authenticate("analyst", "a long enough password")
    assert analyst is not None and analyst.session_version == 0
    store.dispose()
    command.downgrade(alembic_config(url), "0001")
    with engine.connect() as connection:
        assert "session_version" not in {c["name"] for c in inspect(connection).get_columns("users")}
        assert connection.execute(text("SELECT username FROM users")).scalars().all() == ["analyst"]


def test_the_api_refuses_a_database_of_newer_code(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe1234'"))
    engine.dispose()
    settings = make_settings(database_url=database_url, data_dir=tmp_path)
    with pytest.raises(DatabaseNotCurrent, match="is at revision f00dcafe1234, which this code does not know"):
        create_app(settings)


def test_the_worker_refuses_to_start_on_an_empty_database(empty_database_url: str, tmp_path: Path) -> None:
    """Before it connects to Redis (none here) or takes a task: it exits with the sentence."""
    settings = make_settings(database_url=empty_database_url, data_dir=tmp_path)
    finished = subprocess.run(
        ["./run_worker.sh"],
        cwd=PROJECT_ROOT,
        env=worker_env(settings, WORKER_NAME="refused@test"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "run `.venv/bin/alembic upgrade head` (./run.sh does it for you)." in finished.stderr


def test_upgrades_started_together_take_turns_on_postgresql(empty_database_url: str, tmp_path: Path) -> None:
    """Several machines' run.sh may upgrade one PostgreSQL database at once: an upgrade waits for
    the one in progress (here the test holds its lock), then finds nothing left to do."""
    if make_url(empty_database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL's advisory lock; SQLite serves one machine, whose run.sh upgrades once")
    engine = create_engine(empty_database_url)
    env = worker_env(make_settings(database_url=empty_database_url, data_dir=tmp_path))
    with engine.begin() as connection:
        connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        waiting = subprocess.Popen([sys.executable, "-m", "worker.migrate"], cwd=PROJECT_ROOT, env=env)
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=5)
    assert waiting.wait(timeout=30) == 0
    assert revision_of(engine) == head_revision()
    engine.dispose()


def test_jobs_that_the_idempotency_race_doubled_keep_their_rows_and_the_oldest_keeps_the_key(engine: Engine) -> None:
    """Revision 0003 makes (created_by, idempotency_key) unique; the jobs the race made twice before
    it stay, and only the oldest keeps the key, or the index could not be made."""
    url = engine.url.render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "0002")
    for job_id, user, created_at in (
        ("job-old", "analyst", "2026-11-28 10:00:00"),
        ("job-new", "analyst", "2026-11-28 10:00:01"),
        ("job-other", "someone-else", "2026-11-28 10:00:02"),
    ):
        add_job(engine, job_id, created_by=user, idempotency_key="import/42", created_at=created_at)

    command.upgrade(alembic_config(url), "head")

    assert differences(engine) == []
    with engine.connect() as connection:
        keys = dict(connection.execute(text("SELECT id, idempotency_key FROM jobs")).all())
    assert keys == {"job-old": "import/42", "job-new": None, "job-other": "import/42"}


def test_documents_read_before_0004_keep_their_text_and_new_ones_keep_the_pdf(engine: Engine) -> None:
    """Revision 0004 stores the PDF for the worker to read; rows from before keep the text read then."""
    url = engine.url.render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "0003")
    add_job(engine, "job-old")
    documents = table("job_documents", column("job_id"), column("filename"), column("text"))
    with engine.begin() as connection:
        connection.execute(insert(documents).values(job_id="job-old", filename="deck.pdf", text="Read in 2025."))

    command.upgrade(alembic_config(url), "head")

    assert differences(engine) == []
    store = JobStore(url)
    assert store.load_material("job-old").documents == (Document("deck.pdf", "Read in 2025."),)
    pdf = b"%PDF-1.4 not read yet"
    store.create_job("Acme", "analyst", material=Material(documents=(Document("new.pdf", pdf=pdf),)), job_id="job-new")
    [document] = store.load_material("job-new").documents
    assert (document.filename, document.text, document.pdf) == ("new.pdf", "", pdf)
    store.dispose()

    command.downgrade(alembic_config(url), "0003")  # the unread PDF has no text to keep
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT job_id, text FROM job_documents")).all()
    assert rows == [("job-old", "Read in 2025.")]
