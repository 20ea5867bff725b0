"""What an operator sees when the last worker dies: /healthz answers 503 naming the workers within
seconds, the dashboard shows a banner, and both are back to normal once a worker is up again."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from tests.conftest import AUTH, follow_job, submit_report, wait_for

pytestmark = pytest.mark.integration


def health(base: str) -> tuple[int, dict]:
    response = requests.get(f"{base}/healthz", timeout=5)
    return response.status_code, response.json()


def dashboard(base: str) -> str:
    return requests.get(f"{base}/", headers={"Accept": "text/html", **AUTH}, timeout=5).text


def test_healthz_and_the_dashboard_name_a_missing_worker_and_recover(start_worker, api_server: str) -> None:
    worker = start_worker("only", OFFLINE_STEP_DELAY="0.05")
    # Each API process asks on its own, every few seconds: wait until both have seen the worker.
    wait_for(lambda: "No worker is running" not in dashboard(api_server), 15, "the banner to go")
    wait_for(lambda: health(api_server)[1]["worker_names"] == ["only@test"], 15, "the API to see the worker")
    assert health(api_server)[0] == 200

    worker.stop(signal.SIGKILL)
    died_at = time.monotonic()
    job_id = submit_report(api_server, "Waiting For A Worker")
    wait_for(lambda: health(api_server)[0] == 503, 10, "/healthz to answer 503", interval=0.2)
    print(f"\nlast worker SIGKILLed: /healthz answered 503 after {time.monotonic() - died_at:.1f} s")
    # Every API process answers so within 3 s + a 1 s ping (WorkerWatch), the second one included.
    time.sleep(max(0.0, died_at + 8 - time.monotonic()))
    answers = [health(api_server) for _ in range(10)]
    assert {status for status, _ in answers} == {503}, answers
    assert answers[0][1]["workers"] == "no worker answers while 1 job waits: start one (./run_worker.sh)"
    assert answers[0][1]["redis"] == "ok" and answers[0][1]["database"] == "ok"
    assert answers[0][1]["worker_names"] == []
    assert all("No worker is running" in dashboard(api_server) for _ in range(4))

    start_worker("again", OFFLINE_STEP_DELAY="0.05")
    back_at = time.monotonic()
    wait_for(lambda: health(api_server)[0] == 200, 10, "/healthz to answer 200 again", interval=0.2)
    print(f"a worker started again: /healthz answered 200 after {time.monotonic() - back_at:.1f} s")
    assert follow_job(api_server, job_id, timeout=60)[0]["state"] == "SUCCESS"
    time.sleep(max(0.0, back_at + 8 - time.monotonic()))
    answers = [health(api_server) for _ in range(10)]
    assert {status for status, _ in answers} == {200}, answers
    assert all(body["worker_names"] == ["again@test"] for _, body in answers)
    assert all("No worker is running" not in dashboard(api_server) for _ in range(4))
