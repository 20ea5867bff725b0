"""send_requests.py, the bulk sender, against the real API: it stops waiting on every job that has
finished, whatever the way (cancelled jobs included), instead of polling them until its timeout."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from config import PROJECT_ROOT
from tests.conftest import API_TOKEN, AUTH, wait_for

pytestmark = pytest.mark.integration


def test_cancelled_jobs_end_the_wait(api_server: str) -> None:
    sender = subprocess.Popen(
        [sys.executable, "send_requests.py", "-n", "2", "--url", api_server, "--token", API_TOKEN, "--timeout", "120"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # No worker runs: both jobs stay queued until they are cancelled here.
        def both_queued() -> list[dict]:
            jobs = requests.get(f"{api_server}/api/jobs", headers=AUTH, timeout=5).json()["jobs"]
            return jobs if len(jobs) == 2 else []

        listed = wait_for(both_queued, 30, "the sender's two jobs")
        cancelled_at = time.monotonic()
        for job in listed:
            assert requests.post(f"{api_server}/api/jobs/{job['job_id']}/cancel", headers=AUTH, timeout=5).ok
        output, _ = sender.communicate(timeout=30)
    finally:
        sender.kill()
    assert time.monotonic() - cancelled_at < 10, "the sender kept polling cancelled jobs"
    assert sender.returncode == 1, output
    assert output.count("REVOKED") == 2 and "0 succeeded, 2 did not, 0 unfinished" in output, output
