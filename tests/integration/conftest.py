"""Real processes: a Celery worker started by run_worker.sh and the API under gunicorn started by
run_api.sh, both on the tests' own redis-server and database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from config import PROJECT_ROOT, Settings
from tests.conftest import RedisServer, free_port, worker_env
from worker.celery_setup import create_celery
from worker.store import FINISHED_STATES

pytestmark = pytest.mark.integration


class Process:
    """A long-running child in a session of its own, so that it and its children stop together."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
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


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def start_worker(
    settings: Settings, tmp_path: Path, clean_redis: RedisServer
) -> Iterator[Callable[..., Process]]:
    """Start a worker as `./run_worker.sh` would; waits until it answers a ping."""
    started: list[Process] = []
    control = create_celery(settings)

    def start(name: str = "w1", concurrency: int = 2, **env: str) -> Process:
        hostname = f"{name}@test"
        process = Process(
            f"worker-{name}",
            ["./run_worker.sh", "--pool=prefork"],
            worker_env(settings, WORKER_NAME=hostname, WORKER_CONCURRENCY=str(concurrency), **env),
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
        except requests.ConnectionError:
            return False

    wait_for(ready, 30, "the API to answer /healthz")
    yield base
    process.stop()


def follow_job(base: str, job_id: str, timeout: float = 60) -> tuple[dict, list[dict]]:
    """Poll /status until the job finishes; returns the last status and every status seen."""
    seen: list[dict] = []

    def finished() -> dict | None:
        response = requests.get(f"{base}/status/{job_id}", timeout=5)
        assert response.status_code == 200, response.text
        data = response.json()
        seen.append(data)
        return data if data["state"] in FINISHED_STATES else None

    final = wait_for(finished, timeout, f"job {job_id} to finish", interval=0.05)
    return final, seen  # type: ignore[return-value]
