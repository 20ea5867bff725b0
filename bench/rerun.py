"""What a re-run costs against the first run of the same company (issue 17's goal: at most 20 %
of the first run's model calls when its sources did not change).

    .venv/bin/python -m bench.run_bench --scenario rerun

Starts redis-server, a worker (run_worker.sh, as shipped) and the API on free ports with a
SQLite database, the fake provider (LATENCY a call) and the fake search and web
(tests/fakes/search_server.py, as SearXNG, its pages with ETag and Last-Modified). Then three
versions of one company, one after another: the first run (POST /generate), a re-run with every
page unchanged, and a re-run after one page changed (the team page, which only the founders'
search finds). A re-run is queued as a watch's schedule queues one: a job whose
`previous_job_id` names the version before, sent to the worker by id.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from celery import Celery

from bench.run_bench import AUTH, FakeProvider, Stack
from tests.fakes.search_server import ARTICLES, FakeSearchServer, Hit, Script
from worker.celery_setup import TASK_NAME
from worker.models import FINISHED_STATES, Job, JobState
from worker.research import TOPIC_QUERIES
from worker.store import JobStore

STARTUP = "Acme Robotics"
LATENCY = 0.2
TOPIC_PAGES = {
    "company": ("/articles/acme-raises", "/articles/undated"),
    "funding": ("/articles/acme-raises",),
    "founders": ("/articles/acme-team",),
    "competitors": ("/articles/undated",),
    "market": ("/articles/undated",),
}
CHANGED_PAGE = "/articles/acme-team"


@dataclass(frozen=True)
class Version:
    name: str
    calls: int
    seconds: float
    not_modified: int
    kept: int


def run_reruns() -> list[Version]:
    llm = FakeProvider(LATENCY, 6000)
    web = FakeSearchServer().start()
    for topic, paths in TOPIC_PAGES.items():
        hits = tuple(Hit(ARTICLES[p][0], f"{web.url}{p}", ARTICLES[p][2][0][:160], ARTICLES[p][1]) for p in paths)
        web.script(TOPIC_QUERIES[topic].format(name=f'"{STARTUP}"'), Script(hits=hits))
    workdir = Path(tempfile.mkdtemp(prefix="bench-rerun-"))
    env = {"SEARCH_BACKEND": "searxng", "SEARXNG_URL": web.url, "FETCH_ALLOW_PRIVATE": "true"}
    stack = Stack(env, llm.url, workdir)
    store = JobStore(stack.env["DATABASE_URL"])
    client = Celery(broker=stack.env["REDIS_URL"])
    versions: list[Version] = []
    try:

        def version(name: str, previous: str | None) -> str:
            paid_before, not_modified_before = llm.stats()["paid"], len(web.not_modified)
            began = time.monotonic()
            if previous is None:
                response = requests.post(
                    f"http://{stack.bind}/generate", json={"startup": STARTUP}, headers=AUTH, timeout=10
                )
                job_id = response.json()["job_id"]
            else:
                job_id = store.create_job(STARTUP).id
                with store.session() as session:
                    session.get(Job, job_id).previous_job_id = previous
                client.send_task(TASK_NAME, args=[job_id], task_id=job_id)
            job = wait_for_job(store, job_id)
            seconds = time.monotonic() - began
            if job.state != JobState.SUCCESS:
                raise RuntimeError(f"{name}: {job.state} {job.error}")
            kept = sum(1 for step in store.steps(job_id) if step.unchanged_since is not None)
            calls = llm.stats()["paid"] - paid_before
            versions.append(Version(name, calls, seconds, len(web.not_modified) - not_modified_before, kept))
            return job_id

        first = version("first run", None)
        second = version("re-run, nothing changed", first)
        title, published, paragraphs = ARTICLES[CHANGED_PAGE]
        web.set_article(CHANGED_PAGE, title, published, ["Acme Robotics now employs 60 people.", *paragraphs[1:]])
        version("re-run, the team page changed", second)
    finally:
        store.dispose()
        stack.stop()
        llm.stop()
        web.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return versions


def wait_for_job(store: JobStore, job_id: str, timeout: float = 300) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get_job(job_id)
        if job is not None and job.state in FINISHED_STATES:
            return job
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not finish within {timeout} s")


def rerun_table(versions: list[Version]) -> str:
    first = versions[0].calls
    lines = [
        f"### rerun: one company, {LATENCY:g} s per call, fake SearXNG and web (ETag, Last-Modified, 304)",
        "",
        "| version | model calls | of the first run's | steps kept | pages answered 304 | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for v in versions:
        share = f"{v.calls / first:.0%}" if first else "—"
        lines.append(f"| {v.name} | {v.calls} | {share} | {v.kept} | {v.not_modified} | {v.seconds:.1f} |")
    return "\n".join(lines) + "\n"
