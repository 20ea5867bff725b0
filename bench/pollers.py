"""What a status read and a card cost under many concurrent pollers, and that the cost does not
grow with the number of jobs stored (constant work per request).

    .venv/bin/python -m bench.run_bench --scenario pollers

For each number of stored jobs it starts redis-server and the API (run_api.sh, no worker) on
free ports with a SQLite database, stores that many jobs (a third finished, with a report of
REPORT_CHARS characters, a third running, a third queued), then offers GET /status/<id> and
then GET /jobs/<id>/card, each for POLL_SECONDS at POLL_RATE a second from POLL_POLLERS
kept-alive connections, on random jobs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.run_bench import OpenLoop, Stack, p50_p99
from worker.models import Job, JobState, startup_key
from worker.store import JobStore

STORED = (100, 10_000)
POLL_RATE = 330
POLL_POLLERS = 100
POLL_SECONDS = 20
REPORT_CHARS = 15_000  # about the length of a finished report from the fake provider
ENDPOINTS = {"GET /status/<id>": "/status/{}", "GET /jobs/<id>/card": "/jobs/{}/card"}


@dataclass(frozen=True)
class PollResult:
    stored: int
    endpoint: str
    load: OpenLoop
    #: The API processes' CPU seconds (user and system) over the row, per request answered.
    api_cpu_ms: float


def store_jobs(database_url: str, count: int) -> list[str]:
    """`count` jobs in the database the API reads, written directly (not through the API)."""
    store = JobStore(database_url)
    now = datetime.now(UTC)
    report = ("## Section\n\n" + "An analyst's paragraph about the company. " * 40 + "\n\n") * (REPORT_CHARS // 1700)
    jobs = []
    for i in range(count):
        state = (JobState.SUCCESS, JobState.PROGRESS, JobState.PENDING)[i % 3]
        name = f"Polled Startup {i}"
        job = Job(
            id=str(uuid.uuid4()),
            startup=name,
            startup_key=startup_key(name),
            created_by="admin",
            state=state,
            created_at=now - timedelta(seconds=count - i),
        )
        if state != JobState.PENDING:
            job.started_at = job.created_at
            job.progress_step, job.progress_total, job.progress_label = (
                (13 if state == JobState.SUCCESS else 5),
                13,
                "Market",
            )
        if state == JobState.SUCCESS:
            job.finished_at, job.report_md, job.provider = now, report, "openai"
        jobs.append(job)
    with store.session() as session:
        session.add_all(jobs)
    store.dispose()
    return [job.id for job in jobs]


def run_pollers() -> list[PollResult]:
    results = []
    for stored in STORED:
        workdir = Path(tempfile.mkdtemp(prefix="bench-pollers-"))
        stack = Stack({}, "http://127.0.0.1:9", workdir, worker=False)
        try:
            job_ids = store_jobs(stack.env["DATABASE_URL"], stored)
            for endpoint, path in ENDPOINTS.items():
                load = OpenLoop(stack.bind, [path.format(job_id) for job_id in job_ids], POLL_RATE, POLL_POLLERS)
                cpu_before = stack.cpu()["api"]
                load.start()
                time.sleep(POLL_SECONDS)
                load.stop()
                cpu_ms = (stack.cpu()["api"] - cpu_before) * 1000 / max(1, len(load.latencies))
                results.append(PollResult(stored, endpoint, load, cpu_ms))
        finally:
            stack.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def pollers_table(results: list[PollResult]) -> str:
    lines = [
        f"### pollers: {POLL_POLLERS} kept-alive connections, {POLL_RATE} requests/s offered, "
        f"{POLL_SECONDS} s per row, API only (2 processes × 2 threads), SQLite",
        "",
        "| endpoint | jobs stored | answered / s | p50 / p99 (ms) | API CPU a request (ms) | without an answer |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.endpoint} | {r.stored:,} | {r.load.rate:.0f} | {p50_p99(r.load.latencies)} "
            f"| {r.api_cpu_ms:.2f} | {r.load.errors} |"
        )
    return "\n".join(lines) + "\n"
