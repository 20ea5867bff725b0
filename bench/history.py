"""What a user's history costs the reads of each submission and of the job list: the same reads
with 100 and with 10,000 earlier jobs of one user (30 of them live), on SQLite.

    .venv/bin/python -m bench.run_bench --scenario history

Each figure is the best of three runs of 200 calls, in this process (no HTTP): the database's part
of a request, which should not grow with the number of jobs the user asked for before.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from bench.run_bench import ROOT
from worker.models import Job, JobState, startup_key
from worker.store import JobStore

HISTORY = (100, 10_000)
LIVE = 30
USER = "analyst"


READS: dict[str, Callable[[JobStore], object]] = {
    "live jobs of the user (each submission)": lambda store: store.count_live(USER),
    "the startup already being written? (each submission)": lambda store: store.find_live("A New Co", owner=USER),
    "the user's 20 newest jobs (job list)": lambda store: store.recent_jobs(20, owner=USER),
}


def store_history(store: JobStore, count: int) -> None:
    now = datetime.now(UTC)
    with store.session() as session:
        session.add_all(
            Job(
                id=str(uuid.uuid4()),
                startup=f"Company {i}",
                startup_key=startup_key(f"Company {i}"),
                created_by=USER,
                state=JobState.SUCCESS if i < count - LIVE else JobState.PENDING,
                created_at=now - timedelta(minutes=count - i),
            )
            for i in range(count)
        )


def best_ms(call: Callable[[], object]) -> float:
    return min(timeit.repeat(call, number=200, repeat=3)) / 200 * 1000


def run_history() -> list[tuple[int, dict[str, float]]]:
    results = []
    for count in HISTORY:
        workdir = Path(tempfile.mkdtemp(prefix="bench-history-"))
        url = f"sqlite:///{workdir / 'reports.db'}"
        env = {"DATABASE_URL": url, "STARTUP_REPORTS_ENV_FILE": "/dev/null", "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-m", "worker.migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
        store = JobStore(url)
        try:
            store_history(store, count)
            results.append((count, {name: best_ms(partial(read, store)) for name, read in READS.items()}))
        finally:
            store.dispose()
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def history_table(results: list[tuple[int, dict[str, float]]]) -> str:
    counts = [count for count, _ in results]
    lines = [
        f"### history: one user's earlier jobs ({LIVE} live), SQLite, ms a read (best of 3 × 200)",
        "",
        "| read | " + " | ".join(f"{count:,} jobs" for count in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for name in results[0][1]:
        lines.append(f"| {name} | " + " | ".join(f"{figures[name]:.2f}" for _, figures in results) + " |")
    return "\n".join(lines) + "\n"
