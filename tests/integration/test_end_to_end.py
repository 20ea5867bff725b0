"""A report from HTTP request to stored Markdown, through a real Redis, a real Celery worker and
the API under gunicorn; then retries, failures and two workers sharing one queue."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    AUTH,
    Process,
    RedisServer,
    follow_job,
    free_port,
    provider_env,
    submit_report,
    wait_for,
    worker_env,
)
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.fakes.scripted_provider import read_count, write_script
from tests.test_pipeline import EXPECTED_HEADINGS, headings, in_flight_at_most, step_of
from worker.celery_setup import create_celery, step_task_id
from worker.pipeline import (
    DEMO_BANNER,
    PLAN_STEP,
    RESEARCH_LABEL,
    SECTIONS,
    SYNTHESIS_STEP,
    TOTAL_STEPS,
    sections_done_label,
    step_labels,
)
from worker.store import JobStore

pytestmark = pytest.mark.integration

SCRIPTED = "tests.fakes.scripted_provider:ScriptedProvider"


submit = submit_report


def test_a_report_goes_from_queued_through_progress_to_success(
    start_worker, api_server: str, settings, clean_redis: RedisServer
) -> None:
    start_worker(OFFLINE_STEP_DELAY="0.15")
    job_id = submit(api_server, "TeslaAI")
    final, seen = follow_job(api_server, job_id)

    states = [s["state"] for s in seen]
    assert "PROGRESS" in states
    steps = [s["progress"]["step"] for s in seen if s["state"] == "PROGRESS"]
    assert steps == sorted(steps) and len(set(steps)) >= 3, steps
    assert all(s["progress"]["total"] == TOTAL_STEPS for s in seen if s["state"] == "PROGRESS")
    labels = {label for _, label in step_labels()} | {"Done", RESEARCH_LABEL}
    labels |= {sections_done_label(done) for done in range(1, len(SECTIONS) + 1)}
    assert {s["progress"]["label"] for s in seen if s["state"] == "PROGRESS"} <= labels

    assert final["state"] == "SUCCESS", final
    assert final["startup"] == "TeslaAI"
    assert final["report_url"] == f"/reports/{job_id}"
    assert final["calls"] == TOTAL_STEPS and final["attempts"] == 1
    report = final["result"]
    assert headings(report) == ["Summary", *EXPECTED_HEADINGS]
    assert DEMO_BANNER in report
    assert "No sources were searched" in report  # no search backend without keys: said plainly

    # The row holds the report, and the download is the same Markdown.
    row = JobStore(settings.database_url).get_job(job_id)
    assert row.report_md == report and row.worker == "w1@test"
    download = requests.get(f"{api_server}{final['download_url']}", headers=AUTH, timeout=5)
    assert download.status_code == 200 and download.text == report

    # Progress goes to the row alone: nothing is published under the job's id in Redis DB 1 (the
    # job's own task keeps no result; its step tasks keep theirs, for Celery's chord).
    assert clean_redis.client(1).get(f"celery-task-meta-{job_id}") is None
    assert clean_redis.client(1).get(f"celery-task-meta-{step_task_id(job_id, 'synthesis')}") is not None

    # Wiping Redis loses nothing: the report is read from the database.
    clean_redis.client().flushall()
    again = requests.get(f"{api_server}/status/{job_id}", headers=AUTH, timeout=5).json()
    assert again["state"] == "SUCCESS" and again["result"] == report


def test_a_report_writes_its_sections_at_once_between_the_plan_and_the_summary(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    """Issue 20: the worker as shipped (its pool, REPORT_PARALLELISM and the rate limiter's
    defaults) asks for all eleven sections together: one report waits for three calls in a row."""
    fake_llm.set_default("openai", Reply.ok(delay=1.0))
    start_worker(**provider_env(fake_llm, "openai"))
    final, _ = follow_job(api_server, submit(api_server, "Wide Open Ltd"))
    assert final["state"] == "SUCCESS", final
    arrivals = {step_of(r.prompt): r.at for r in fake_llm.requests}
    sections = [arrivals[s.key] for s in SECTIONS]
    assert in_flight_at_most(fake_llm.requests, 1.0) == len(SECTIONS)
    assert arrivals[PLAN_STEP] + 1.0 <= min(sections) and max(sections) + 1.0 <= arrivals[SYNTHESIS_STEP]


def test_each_api_process_warms_up_before_its_first_request(api_server: str, tmp_path: Path) -> None:
    """run_api.sh loads webapp/gunicorn_config.py: each of the 2 gunicorn processes connects to
    the database and the broker as it starts, not in its first analyst's request."""
    log = tmp_path / "api.log"

    def warmed() -> list[str]:
        lines = [line for line in log.read_text().splitlines() if "warmed up in" in line]
        return lines if len(lines) == 2 else []

    wait_for(warmed, 30, "both API processes to warm up")
    assert "warm-up of" not in log.read_text()  # nothing failed


@pytest.mark.parametrize("access_log", ["", "-"])
def test_the_access_log_is_written_only_when_asked_for(access_log: str, settings, tmp_path: Path) -> None:
    """API_ACCESS_LOG="-" puts gunicorn's line per request in the API's output; by default there is
    none (it is mostly polls, and costs each a part of its CPU: config.py)."""
    bind = f"127.0.0.1:{free_port()}"
    process = Process("api", ["./run_api.sh"], worker_env(settings, BIND=bind, API_ACCESS_LOG=access_log), tmp_path)

    def answered() -> bool:
        try:
            return requests.get(f"http://{bind}/healthz", headers={"User-Agent": "access-log-test"}, timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_for(answered, 30, "the API to answer /healthz")
    finally:
        process.stop()
    output = process.log_path.read_text(errors="replace")
    lines = [line for line in output.splitlines() if "access-log-test" in line]
    assert bool(lines) == bool(access_log), output
    assert all('"GET /healthz HTTP/1.1" 200' in line for line in lines)


def test_two_workers_on_one_redis_share_the_queue(start_worker, api_server: str, settings) -> None:
    start_worker("alpha", concurrency=1, OFFLINE_STEP_DELAY="0.05")
    start_worker("beta", concurrency=1, OFFLINE_STEP_DELAY="0.05")
    job_ids = [submit(api_server, f"Startup {i}") for i in range(6)]
    finals = [follow_job(api_server, job_id)[0] for job_id in job_ids]
    assert [f["state"] for f in finals] == ["SUCCESS"] * 6
    # Each report is a canvas of step tasks: Celery's stored states say which worker ran each.
    backend = create_celery(settings).backend
    ran_by = {
        backend.get_task_meta(step_task_id(job_id, key)).get("worker") for job_id in job_ids for key, _ in step_labels()
    }
    assert ran_by - {None} == {"alpha@test", "beta@test"}


def test_transient_errors_are_retried_with_backoff_and_no_step_is_paid_twice(
    start_worker, api_server: str, tmp_path: Path
) -> None:
    script = tmp_path / "script"
    write_script(script, {3: "transient", 4: "transient"})
    start_worker(
        REPORT_PARALLELISM="1",  # one step at a time: calls 3 and 4 fail in two attempts in a row
        LLM_PROVIDER=SCRIPTED,
        SCRIPTED_PROVIDER_DIR=str(script),
        RETRY_BACKOFF_BASE="0.5",
        OFFLINE_STEP_DELAY="0.02",
    )
    job_id = submit(api_server, "Flaky Inc")
    final, seen = follow_job(api_server, job_id)

    assert final["state"] == "SUCCESS", final
    assert final["attempts"] == 3
    retrying = [s for s in seen if s["state"] == "RETRY"]
    assert retrying, [s["state"] for s in seen]
    assert "timed out on call" in retrying[0]["error"]
    assert retrying[0]["retry"]["max_retries"] == 3 and retrying[0]["retry"]["at"]
    assert read_count(script, "calls") == TOTAL_STEPS + 2
    assert read_count(script, "ok") == TOTAL_STEPS  # each step paid for exactly once
    assert final["calls"] == TOTAL_STEPS
    assert "error" not in final


def test_a_fatal_error_fails_the_job_at_once_with_its_reason(start_worker, api_server: str, tmp_path: Path) -> None:
    script = tmp_path / "script"
    write_script(script, {2: "fatal"})
    start_worker(LLM_PROVIDER=SCRIPTED, SCRIPTED_PROVIDER_DIR=str(script))
    job_id = submit(api_server, "Locked Out Ltd")
    final, _ = follow_job(api_server, job_id)

    assert final["state"] == "FAILURE"
    assert final["error"] == "Scripted provider rejected the API key: check SCRIPTED_API_KEY."
    assert final["attempts"] == 1
    # The plan, then the sections at once (the second call is a section's; those already started
    # when it failed may finish): none is asked again after the fatal error, and no summary is.
    assert 2 <= read_count(script, "calls") <= 1 + len(SECTIONS)
    assert requests.get(f"{api_server}/reports/{job_id}.md", headers=AUTH, timeout=5).status_code == 409


def test_retries_are_bounded_and_the_failure_says_what_to_do(start_worker, api_server: str, tmp_path: Path) -> None:
    script = tmp_path / "script"
    write_script(script, {}, default="transient")
    start_worker(
        LLM_PROVIDER=SCRIPTED,
        SCRIPTED_PROVIDER_DIR=str(script),
        RETRY_BACKOFF_BASE="0.2",
        TASK_MAX_RETRIES="2",
    )
    job_id = submit(api_server, "Down Corp")
    final, _ = follow_job(api_server, job_id)

    assert final["state"] == "FAILURE"
    assert "Gave up after 3 attempts" in final["error"] and "Try again" in final["error"]
    assert read_count(script, "calls") == 3


def test_a_job_queued_while_no_worker_runs_is_done_when_one_starts(start_worker, api_server: str) -> None:
    job_id = submit(api_server, "Patient Co")
    status = requests.get(f"{api_server}/status/{job_id}", headers=AUTH, timeout=5).json()
    assert status["state"] == "PENDING"
    start_worker()
    final, _ = follow_job(api_server, job_id)
    assert final["state"] == "SUCCESS"


def test_the_threads_pool_runs_reports_and_honours_cancel_between_steps(
    start_worker, api_server: str, settings
) -> None:
    """The default pool: several reports at once in one process, and a cancel that stops a job
    before its next step (threads cannot be killed mid-call)."""
    start_worker(pool="threads", concurrency=4, OFFLINE_STEP_DELAY="0.3", REPORT_PARALLELISM="2")
    doomed = submit(api_server, "Stop Me Ltd")
    job_ids = [submit(api_server, f"Threaded {i}") for i in range(3)]

    def running() -> bool:
        return requests.get(f"{api_server}/status/{doomed}", headers=AUTH, timeout=5).json()["state"] == "PROGRESS"

    wait_for(running, 30, "the job to be under way")
    cancelled = requests.post(f"{api_server}/api/jobs/{doomed}/cancel", headers=AUTH, timeout=5)
    assert cancelled.status_code == 200
    finals = [follow_job(api_server, job_id)[0] for job_id in job_ids]
    assert [f["state"] for f in finals] == ["SUCCESS"] * 3
    store = JobStore(settings.database_url)
    calls_then = store.get_job(doomed).calls
    time.sleep(1.5)
    job = store.get_job(doomed)
    assert job.state == "REVOKED" and job.calls == calls_then and job.calls < TOTAL_STEPS
