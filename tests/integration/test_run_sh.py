"""`./run.sh`, the one command: embedded Redis with AOF, worker, API and Flower, a report over
curl-like HTTP, `celery inspect ping` from another shell, and Ctrl-C stopping everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from config import PROJECT_ROOT
from tests.conftest import AUTH, SETTING_NAMES, follow_job, free_port, submit_report, wait_for
from tests.test_pipeline import EXPECTED_HEADINGS, headings

pytestmark = pytest.mark.integration


class RunSh:
    """`./run.sh` started as a user would, on free ports, with its data under `tmp_path`."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.data_dir = tmp_path / "data"
        self.bind = f"127.0.0.1:{free_port()}"
        self.flower_port = free_port()
        env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES and not k.endswith("_API_KEY")}
        env.update(
            STARTUP_REPORTS_ENV_FILE=os.devnull,
            DATA_DIR=str(self.data_dir),
            BIND=self.bind,
            FLOWER_PORT=str(self.flower_port),
            EMBEDDED_REDIS_PORT=str(free_port()),
            OFFLINE_STEP_DELAY="0.05",
            LLM_PROVIDER="auto",
            API_TOKEN=AUTH["Authorization"].removeprefix("Bearer "),
        )
        env.update(settings)
        self.env = env
        self.log_path = tmp_path / "run.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ["./run.sh"], cwd=PROJECT_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_up(self) -> None:
        wait_for(lambda: "Press Ctrl-C" in self.output() or self.process.poll() is not None, 180, "run.sh to start")
        assert self.process.poll() is None, self.output()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.log.close()


def test_run_sh_brings_the_stack_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    stack = RunSh(tmp_path)
    run, output, env, data_dir = stack.process, stack.output, stack.env, stack.data_dir
    bind, flower_port = stack.bind, stack.flower_port
    try:
        stack.wait_until_up()
        text = output()
        assert f"http://{bind}" in text and f":{flower_port}" in text
        assert "offline demo" in text

        # The first start printed admin's random password once, and it works.
        password = re.search(r"log in as  admin  with password  (\S+)", text).group(1)
        assert not (data_dir / "admin-password").exists()
        browser = requests.Session()
        login_page = browser.get(f"http://{bind}/login", timeout=5).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        logged_in = browser.post(
            f"http://{bind}/login",
            data={"username": "admin", "password": password, "csrf_token": csrf},
            timeout=5,
        )
        assert logged_in.status_code == 200 and "Recent jobs" in logged_in.text
        flower_auth = tuple(re.search(r"log in as (admin:\S+) \(made for this run", text).group(1).split(":", 1))

        # The embedded Redis runs with AOF under the data dir, and says where it is.
        redis_url = (data_dir / "redis.url").read_text().strip()
        assert re.fullmatch(r"redis://127\.0\.0\.1:\d+", redis_url)
        assert f"Redis              {redis_url}" in text

        base = f"http://{bind}"
        response = requests.post(f"{base}/generate", json={"startup": "TeslaAI"}, headers=AUTH, timeout=10)
        assert response.status_code == 202
        final, seen = follow_job(base, response.json()["job_id"], timeout=120)
        assert final["state"] == "SUCCESS"
        assert any(s["state"] == "PROGRESS" for s in seen)
        assert headings(final["result"]) == ["Summary", *EXPECTED_HEADINGS]
        assert "Demo output" in final["result"]
        assert list((data_dir / "redis").glob("appendonly*")), "AOF is not on"

        # From another shell, with nothing set but the data dir: the CLI finds the same Redis.
        ping_env = {k: v for k, v in env.items() if k not in ("REDIS_URL",)}
        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "inspect", "ping", "--timeout", "5"],
            cwd=PROJECT_ROOT,
            env=ping_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr

        # Flower lists the worker.
        def flower_lists_worker() -> bool:
            try:
                page = requests.get(f"http://127.0.0.1:{flower_port}/workers", auth=flower_auth, timeout=2).text
            except requests.ConnectionError:
                return False
            return "worker@" in page

        wait_for(flower_lists_worker, 30, "Flower to list the worker")
        assert requests.get(f"http://127.0.0.1:{flower_port}/workers", timeout=2).status_code == 401
        # Flower answers these without a password (it has no option to ask), so it listens on
        # loopback alone unless FLOWER_ADDRESS says otherwise.
        assert requests.get(f"http://127.0.0.1:{flower_port}/metrics", timeout=2).status_code == 200
        flower = next(p for p in psutil.Process(run.pid).children(recursive=True) if "flower" in p.cmdline())
        listening = {c.laddr.ip for c in flower.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}, listening

        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 4
    finally:
        stack.stop()

    assert "stopped" in output()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not (data_dir / "redis.url").exists()

    # The database, its WAL, the logs, Redis's AOF and the secrets are this user's alone.
    assert data_dir.stat().st_mode & 0o777 == 0o700
    made = {path.relative_to(data_dir).as_posix(): path.stat().st_mode & 0o777 for path in data_dir.rglob("*")}
    assert "reports.db" in made and "logs/api.log" in made and "secret_key" in made, made
    assert {name: mode for name, mode in made.items() if mode & 0o077} == {}


def newer_worker(run: subprocess.Popen, old_pid: int) -> psutil.Process | None:
    """run.sh's worker once it is another process than `old_pid`, else None."""
    assert run.poll() is None, "run.sh stopped"
    try:
        worker = the_worker(run)
    except AssertionError:
        return None
    return worker if worker.pid != old_pid else None


def the_worker(run: subprocess.Popen) -> psutil.Process:
    """run.sh's worker process (the threads pool that ships is one process)."""
    for child in psutil.Process(run.pid).children(recursive=True):
        try:
            if "worker.celery_app" in child.cmdline() and "worker" in child.cmdline():
                return child
        except psutil.Error:
            continue
    raise AssertionError("run.sh has no worker")


def test_run_sh_restarts_a_killed_worker_and_gives_up_on_one_that_keeps_dying(tmp_path: Path) -> None:
    # Short limits so that the killed worker's tasks come back in seconds, not 16 minutes.
    stack = RunSh(
        tmp_path,
        OFFLINE_STEP_DELAY="1",
        TASK_TIME_LIMIT="10",
        CELERY_VISIBILITY_TIMEOUT="15",
        RETRY_BACKOFF_MAX="4",
        UNACKED_RESTORE_INTERVAL="1",
    )
    base = f"http://{stack.bind}"
    try:
        stack.wait_until_up()
        job_id = submit_report(base, "Phoenix Again")
        wait_for(lambda: status_of(base, job_id)["progress"]["step"] >= 2, 60, "the report to be under way")
        first = the_worker(stack.process)
        first.kill()
        killed_at = time.monotonic()
        wait_for(lambda: "worker restarted" in stack.output(), 20, "run.sh to restart the worker")
        print(f"\nworker SIGKILL under run.sh: a new worker {time.monotonic() - killed_at:.1f} s after the kill")
        assert time.monotonic() - killed_at < 10
        assert "worker exited unexpectedly (status 137)" in stack.output()
        wait_for(lambda: newer_worker(stack.process, first.pid), 20, "the new worker process")
        final, _ = follow_job(base, job_id, timeout=90)
        print(f"the report finished {time.monotonic() - killed_at:.1f} s after the kill (visibility timeout 15 s)")
        assert final["state"] == "SUCCESS" and "Demo output" in final["result"]
        assert "worker exited unexpectedly" in (stack.data_dir / "logs" / "run.log").read_text()

        # Then a worker that dies every time it starts: restarted 1 + 4 more times, 2, 4, 8 and
        # 16 s apart; at its sixth death in a row run.sh gives up, says so, and stops everything.
        last = the_worker(stack.process)
        for restart in range(2, 6):
            last.kill()
            last = wait_for(lambda pid=last.pid: newer_worker(stack.process, pid), 40, f"restart {restart}")
        last.kill()
        stack.process.wait(timeout=90)
        assert stack.process.returncode == 1
        assert "GIVING UP on worker: restarted 5 times in a row, it died each time within 60 s." in stack.output()
        assert "[run.sh] stopped" in stack.output()
    finally:
        stack.stop()


def status_of(base: str, job_id: str) -> dict:
    return requests.get(f"{base}/status/{job_id}", headers=AUTH, timeout=5).json()
