"""`./run.sh`, the one command: embedded Redis with AOF, worker, API and Flower, a report over
curl-like HTTP, `celery inspect ping` from another shell, and Ctrl-C stopping everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from config import PROJECT_ROOT
from tests.conftest import AUTH, SETTING_NAMES, follow_job, free_port, wait_for
from tests.test_pipeline import EXPECTED_HEADINGS, headings

pytestmark = pytest.mark.integration


def test_run_sh_brings_the_stack_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    bind = f"127.0.0.1:{free_port()}"
    flower_port = free_port()
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES and not k.endswith("_API_KEY")}
    env.update(
        STARTUP_REPORTS_ENV_FILE=os.devnull,
        DATA_DIR=str(data_dir),
        BIND=bind,
        FLOWER_PORT=str(flower_port),
        EMBEDDED_REDIS_PORT=str(free_port()),
        OFFLINE_STEP_DELAY="0.05",
        LLM_PROVIDER="auto",
        API_TOKEN=AUTH["Authorization"].removeprefix("Bearer "),
    )
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(["./run.sh"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    output = lambda: (tmp_path / "run.log").read_text(errors="replace")  # noqa: E731
    try:
        wait_for(lambda: "Press Ctrl-C" in output() or run.poll() is not None, 180, "run.sh to start")
        assert run.poll() is None, output()
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

        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 4
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
        log.close()

    assert "stopped" in output()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not (data_dir / "redis.url").exists()
