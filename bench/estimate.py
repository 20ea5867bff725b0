"""What `POST /estimate` costs for a batch of 50 startups (issue 18: under 50 ms p99).

    .venv/bin/python -m bench.run_bench --scenario estimate

Starts redis-server and the API (run_api.sh, 2 processes × 2 threads, no worker) on free ports
with a SQLite database holding HISTORY_REPORTS succeeded reports of 13 paid steps each (so the
estimate measures a real history, not the default size), then sends REQUESTS estimates of 50
distinct names over 1 and then 4 kept-alive connections, each connection sending its next
request when the answer to the one before is in (a closed loop), and reports the latencies of
the answers. Each API process measures the history again once a minute
(`worker.estimate.HISTORY_TTL_SECONDS`); those requests are among the ones measured.
"""

from __future__ import annotations

import http.client
import json
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.run_bench import AUTH, Stack, p50_p99
from worker.models import Job, JobState, JobStep, startup_key
from worker.pipeline import step_labels
from worker.store import JobStore

HISTORY_REPORTS = 200
NAMES = 50
REQUESTS = 2000
CONNECTIONS = (1, 4)


@dataclass
class EstimateResult:
    connections: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms, of the answers 200
    errors: int = 0


def store_history(database_url: str, count: int) -> None:
    """`count` succeeded reports with a paid step each for the plan, the sections and the summary."""
    store = JobStore(database_url)
    now = datetime.now(UTC)
    rows: list[Job | JobStep] = []
    for i in range(count):
        name = f"Measured Startup {i}"
        created = now - timedelta(minutes=count - i)
        job = Job(
            id=str(uuid.uuid4()),
            startup=name,
            startup_key=startup_key(name),
            created_by="admin",
            state=JobState.SUCCESS,
            created_at=created,
            started_at=created,
            finished_at=created + timedelta(seconds=30),
            report_md="# Report",
            provider="openai/gpt-5-mini",
        )
        rows.append(job)
        for key, _ in step_labels():
            tokens_in, tokens_out = 2000 + 37 * (i % 13), 600 + 11 * (i % 7)
            rows.append(
                JobStep(
                    job_id=job.id,
                    key=key,
                    text="text",
                    provider="openai",
                    model="gpt-5-mini",
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=(tokens_in * 0.25 + tokens_out * 2.0) / 1e6,
                    paid=True,
                )
            )
    with store.session() as session:
        session.add_all(rows)
    store.dispose()


def _send(bind: str, body: bytes, requests: int, result: EstimateResult, lock: threading.Lock) -> None:
    host, port = bind.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {**AUTH, "Content-Type": "application/json"}
    for _ in range(requests):
        started = time.perf_counter()
        try:
            connection.request("POST", "/estimate", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            connection.close()
            with lock:
                result.errors += 1
            continue
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if response.status == 200:
                result.latencies.append(elapsed)
            else:
                result.errors += 1


def run_estimates() -> list[EstimateResult]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-estimate-"))
    stack = Stack({}, "http://127.0.0.1:9", workdir, worker=False)
    body = json.dumps({"startups": [f"Estimated Startup {i}" for i in range(NAMES)]}).encode()
    results = []
    try:
        store_history(stack.env["DATABASE_URL"], HISTORY_REPORTS)
        for connections in CONNECTIONS:
            result = EstimateResult(connections)
            lock = threading.Lock()
            threads = [
                threading.Thread(target=_send, args=(stack.bind, body, REQUESTS // connections, result, lock))
                for _ in range(connections)
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            result.seconds = time.monotonic() - started
            results.append(result)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def estimate_table(results: list[EstimateResult]) -> str:
    lines = [
        f"### estimate: POST /estimate with {NAMES} startups, {REQUESTS} requests a row, closed loop, "
        f"API only (2 processes × 2 threads), SQLite with {HISTORY_REPORTS} measured reports",
        "",
        "| connections | answered / s | p50 / p99 (ms) | without an answer |",
        "|---|---|---|---|",
    ]
    for r in results:
        rate = len(r.latencies) / r.seconds if r.seconds else 0.0
        lines.append(f"| {r.connections} | {rate:.0f} | {p50_p99(r.latencies)} | {r.errors} |")
    return "\n".join(lines) + "\n"
