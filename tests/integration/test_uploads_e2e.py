"""PDF bombs uploaded through the real API (gunicorn) and read by a real worker: the API stays
fast while the worker reads them (in child processes with limits), and the report says what was
not read."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import AUTH
from tests.fakes.pdf_builder import shared_stream_bomb
from worker.sources.documents import MB

pytestmark = pytest.mark.integration


def test_the_api_stays_fast_while_a_worker_reads_pdf_bombs(start_worker, api_server: str) -> None:
    # Two files of ~15 KB whose second page inflates to 3.9 MB of text operators (just under the
    # 4 MB page cap), which pypdf takes seconds to extract; one whose pages inflate to 70 MB each.
    bombs = [
        shared_stream_bomb(
            16, inflated_bytes=int(3.9 * MB), first_page=f"Deck {n}: Bomb Co sells rockets to hobbyists."
        )
        for n in range(2)
    ]
    bombs.append(
        shared_stream_bomb(16, inflated_bytes=70 * MB, first_page="Deck 2: Bomb Co sells rockets to hobbyists.")
    )
    start_worker(OFFLINE_STEP_DELAY="0")
    started = time.monotonic()
    response = requests.post(
        f"{api_server}/generate",
        data={"startup": "Bomb Co"},
        files=[("document", (f"bomb{n}.pdf", bomb, "application/pdf")) for n, bomb in enumerate(bombs)],
        headers=AUTH,
        timeout=30,
    )
    post_seconds = time.monotonic() - started
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    health, status, finished = [], [], None
    while finished is None and time.monotonic() - started < 120:
        before = time.monotonic()
        # 200, or 503 while an API process has yet to see the worker: the answer's time is the point.
        assert requests.get(f"{api_server}/healthz", timeout=30).status_code in (200, 503)
        health.append(time.monotonic() - before)
        before = time.monotonic()
        body = requests.get(f"{api_server}/status/{job_id}", headers=AUTH, timeout=30).json()
        status.append(time.monotonic() - before)
        finished = body if body["finished"] else None
        time.sleep(0.1)
    reading_seconds = time.monotonic() - started
    print(
        f"\nPOST with 3 bombs: {post_seconds * 1000:.0f} ms; job done after {reading_seconds:.1f} s; "
        f"/healthz max {max(health) * 1000:.0f} ms over {len(health)} requests, "
        f"/status max {max(status) * 1000:.0f} ms"
    )
    assert finished is not None and finished["state"] == "SUCCESS", finished
    assert reading_seconds > 5  # the measurements below were taken while the worker was reading
    assert post_seconds < 2 and max(health) < 2 and max(status) < 2
    report = finished["result"]
    for n in range(3):
        assert f"{n + 1}. bomb{n}.pdf (provided by the analyst)" in report
    assert "bomb2.pdf: too large to read after 1 page." in report.split("## Summary")[0]
