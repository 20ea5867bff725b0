"""Faults, injected into real processes: a worker killed mid-report, a pool child killed, Redis
wiped, Redis killed and restarted under load, and a user cancelling a running job. Each test
prints the recovery time it measured (`pytest -s` shows them)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests

from config import Settings
from tests.conftest import (
    AUTH,
    Process,
    RedisServer,
    follow_job,
    free_port,
    make_settings,
    provider_env,
    submit_report,
    wait_for,
)
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.fakes.scripted_provider import write_script
from worker.celery_setup import create_celery
from worker.pipeline import TOTAL_STEPS
from worker.store import JobStore

pytestmark = pytest.mark.integration
PARALLELISM = Settings.model_fields["report_parallelism"].default  # sections written at once


submit = submit_report


def status(base: str, job_id: str) -> dict:
    return requests.get(f"{base}/status/{job_id}", headers=AUTH, timeout=5).json()


def pool_children(worker) -> list[psutil.Process]:  # type: ignore[no-untyped-def]
    return psutil.Process(worker.popen.pid).children()


def test_a_worker_killed_mid_report_is_recovered_without_recomputing_steps(
    start_worker, api_server: str, fake_llm: FakeLLMServer, settings: Settings
) -> None:
    """Short limits: each of the report's tasks is one step, or its sections written at once (one
    call long), so the 10-second time limit bounds one call rather than the report, and a killed
    worker's tasks come back after the 15-second visibility timeout."""
    fake_llm.set_default("openai", Reply.ok(delay=1.0))
    limits = {
        "TASK_TIME_LIMIT": "10",
        "CELERY_VISIBILITY_TIMEOUT": "15",
        "RETRY_BACKOFF_MAX": "4",
        "UNACKED_RESTORE_INTERVAL": "1",
    }
    env = provider_env(fake_llm, "openai", **limits)
    first = start_worker("doomed", **env)
    job_id = submit(api_server, "Phoenix Labs")
    wait_for(lambda: len(fake_llm.successes()) >= 5, 30, "five steps to finish")

    first.stop(signal.SIGKILL)  # the whole worker, parent and pool child together
    killed_at = time.monotonic()
    paid_before = len(fake_llm.successes())
    stored_before = len(JobStore(settings.database_url).load_checkpoints(job_id))
    start_worker("rescuer", **env)
    final, _ = follow_job(api_server, job_id, timeout=110)
    recovery = time.monotonic() - killed_at
    print(f"\nworker SIGKILL: job finished {recovery:.1f} s after the kill (visibility timeout 15 s)")

    assert final["state"] == "SUCCESS", final
    assert recovery < 120
    successes = fake_llm.successes()
    # Steps stored before the kill were not asked again; at most the calls in flight (one per
    # section being written at once) are repeated.
    assert TOTAL_STEPS <= len(successes) <= TOTAL_STEPS + PARALLELISM
    # Exactly the steps not stored at the kill were asked after it (calls in flight at the kill
    # arrived before it, even if the server answered them to a dead socket later).
    asked_after = [r for r in successes if r.at > killed_at]
    assert len(asked_after) == TOTAL_STEPS - stored_before, (len(asked_after), stored_before, paid_before)
    store = JobStore(settings.database_url)
    assert [j.id for j in store.recent_jobs(10)] == [job_id]  # one job, one report
    job = store.get_job(job_id)
    assert job.worker == "rescuer@test"
    assert job.duration_seconds > 10  # longer than the time limit of one task
    # Every call the provider served is on the books, those in flight at the kill included: they
    # were counted before they were sent, and show as unanswered (paid, but lost with the worker).
    # An attempt counted in the instant before the kill may never have left: at most one a batch.
    served = len(fake_llm.requests)
    assert served <= job.calls_sent <= served + PARALLELISM, (job.calls_sent, served)
    assert job.calls == TOTAL_STEPS and job.retries == 0
    assert job.unanswered_calls == job.calls_sent - TOTAL_STEPS >= len(successes) - TOTAL_STEPS
    usage = status(api_server, job_id)["usage"]
    assert usage["calls_sent"] == job.calls_sent and usage["calls_unanswered"] == job.unanswered_calls


def test_a_killed_pool_child_is_replaced_and_its_job_delivered_again(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    """Prefork only: the threads pool that ships has no child to lose (the OOM killer takes the
    whole worker, as in the test above)."""
    fake_llm.set_default("openai", Reply.ok(delay=0.3))
    worker = start_worker(pool="prefork", concurrency=1, **provider_env(fake_llm, "openai"))
    job_id = submit(api_server, "Out Of Memory Inc")
    wait_for(lambda: len(fake_llm.successes()) >= 3, 30, "three steps to finish")
    port = int(fake_llm.url.rsplit(":", 1)[1])

    def busy_child() -> psutil.Process | None:
        """The pool process writing the report: the one connected to the provider (a spare
        process Celery is starting may sit beside it)."""
        for child in pool_children(worker):
            try:
                if any(c.raddr and c.raddr.port == port for c in child.net_connections(kind="tcp")):
                    return child
            except psutil.Error:
                continue
        return None

    child = wait_for(busy_child, 30, "the pool process that calls the provider")
    child.kill()  # as the OOM killer would
    killed_at = time.monotonic()
    final, _ = follow_job(api_server, job_id, timeout=60)
    print(f"\npool child SIGKILL: job finished {time.monotonic() - killed_at:.1f} s after the kill")

    assert final["state"] == "SUCCESS", final
    assert worker.alive()
    assert TOTAL_STEPS <= len(fake_llm.successes()) <= TOTAL_STEPS + PARALLELISM


def test_a_job_that_kills_its_worker_every_time_gives_up(start_worker, api_server: str, tmp_path: Path) -> None:
    """Prefork, where a crash takes one pool process and the worker counts it at once; under the
    threads pool a crash takes the whole worker, run.sh restarts it (test_run_sh.py), and the same
    count stops the job after the visibility timeout of each delivery."""
    script = tmp_path / "script"
    write_script(script, {}, default="crash")
    worker = start_worker(
        pool="prefork",
        concurrency=1,
        LLM_PROVIDER="tests.fakes.scripted_provider:ScriptedProvider",
        SCRIPTED_PROVIDER_DIR=str(script),
    )
    job_id = submit(api_server, "Memory Hog Ltd")
    final, _ = follow_job(api_server, job_id, timeout=90)

    assert final["state"] == "FAILURE"
    assert "stopped its worker process 5 times" in final["error"] and "memory" in final["error"]
    assert worker.alive()


def test_on_the_threads_pool_a_job_that_kills_its_worker_every_time_gives_up_too(
    start_worker, api_server: str, tmp_path: Path
) -> None:
    """The pool that ships: a crash takes the whole worker, which the supervisor (run.sh, systemd)
    starts again, here this test; the message comes back after the visibility timeout, and the
    delivery count in the database fails the job instead of a sixth crash."""
    script = tmp_path / "script"
    write_script(script, {}, default="crash")
    env = {
        "LLM_PROVIDER": "tests.fakes.scripted_provider:ScriptedProvider",
        "SCRIPTED_PROVIDER_DIR": str(script),
        # The shortest the settings allow, so that each re-delivery comes within seconds.
        "TASK_TIME_LIMIT": "5",
        "RETRY_BACKOFF_MAX": "1",
        "CELERY_VISIBILITY_TIMEOUT": "10",
        "UNACKED_RESTORE_INTERVAL": "1",
    }
    worker = start_worker("restart0", **env)
    job_id = submit(api_server, "Crash Loop Inc")  # after the start: the worker must answer a ping first
    crashes = 0
    for restart in range(1, 9):
        if restart > 1:  # the message comes back after the visibility timeout, well after the start
            worker = start_worker(f"restart{restart}", **env)

        def crashed_or_finished(w: Process = worker) -> bool:
            return not w.alive() or status(api_server, job_id)["finished"]

        wait_for(crashed_or_finished, 40, "a crash or the end")
        if worker.alive():
            break
        crashes += 1
    final = status(api_server, job_id)
    assert final["state"] == "FAILURE" and "stopped its worker process 5 times" in final["error"]
    assert crashes == 5 and worker.alive()


def test_jobs_lost_when_redis_is_wiped_are_found_and_queued_again(
    start_worker, api_server: str, clean_redis: RedisServer
) -> None:
    job_ids = [submit(api_server, f"Forgotten {i}") for i in range(3)]
    clean_redis.client().flushall()  # no persistence: every queued message is gone
    wiped_at = time.monotonic()
    start_worker(SWEEP_INTERVAL="1", SWEEP_GRACE="2")
    finals = [follow_job(api_server, job_id, timeout=60)[0] for job_id in job_ids]
    print(f"\nRedis wiped: all 3 jobs finished {time.monotonic() - wiped_at:.1f} s after the wipe")
    assert [f["state"] for f in finals] == ["SUCCESS"] * 3


def test_cancelling_a_running_job_stops_its_spending_at_once(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply.ok(delay=0.4))
    start_worker(**provider_env(fake_llm, "openai"))
    job_id = submit(api_server, "Never Mind GmbH")
    wait_for(lambda: len(fake_llm.requests) >= 3, 30, "three calls")
    response = requests.post(f"{api_server}/api/jobs/{job_id}/cancel", headers=AUTH, timeout=5)
    cancelled_at = time.monotonic()  # the cancel is in force once its answer has come back
    assert response.status_code == 200 and response.json()["cancelled_by"] == "admin"
    time.sleep(2.5)
    assert all(r.at < cancelled_at for r in fake_llm.requests)  # not one call started after the cancel
    final = status(api_server, job_id)
    assert final["state"] == "REVOKED" and final["error"] == "Cancelled by admin."

    fake_llm.set_default("openai", Reply.ok())
    after, _ = follow_job(api_server, submit(api_server, "Next Please"), timeout=60)
    assert after["state"] == "SUCCESS"  # the worker carries on


@pytest.fixture
def aof_redis(tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path / "aof-redis", appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_redis_killed_and_restarted_under_load_loses_no_job(
    aof_redis: RedisServer, tmp_path: Path, database_url: str, fake_llm: FakeLLMServer, request, pool: str
) -> None:
    """As an operator meets it: the worker as run_worker.sh starts it (on each supported pool),
    restarted once already, calls of 2 s in flight, and Redis SIGKILLed and restarted with its
    AOF three times in a row. The same worker process comes through all three, and every job
    finishes."""
    from tests.conftest import Process, worker_env

    settings = make_settings(
        redis_url=aof_redis.url, database_url=database_url, data_dir=tmp_path / "data", llm_provider="openai"
    )
    # A message whose acknowledgement was lost with the connection comes back after the visibility
    # timeout: short limits make that seconds, not the 16 minutes of the defaults.
    limits = {"TASK_TIME_LIMIT": "20", "CELERY_VISIBILITY_TIMEOUT": "30", "RETRY_BACKOFF_MAX": "5"}
    # A message Redis acknowledged in its last second before SIGKILL is not in its AOF (fsync every
    # second): the lost-job sweep queues that job again from its checkpoints, after a grace longer
    # than any step (here seconds, not the 10 minutes of the defaults).
    limits |= {"SWEEP_INTERVAL": "2", "SWEEP_GRACE": "30"}
    env = worker_env(
        settings,
        **provider_env(fake_llm, "openai"),
        **limits,
        UNACKED_RESTORE_INTERVAL="1",
        WORKER_NAME="steady@test",
        WORKER_POOL=pool,
    )
    fake_llm.set_default("openai", Reply.ok(delay=2.0))
    bind = f"127.0.0.1:{free_port()}"
    api = Process("api-steady", ["./run_api.sh"], {**env, "BIND": bind}, tmp_path)
    request.addfinalizer(api.stop)
    base = f"http://{bind}"

    def worker_answers() -> bool:
        """A ping over a connection of its own: a pooled one would be stale after an outage."""
        control = create_celery(settings)
        try:
            with control.connection_for_write() as connection:
                return bool(control.control.ping(destination=["steady@test"], timeout=0.5, connection=connection))
        except Exception:  # Redis still starting
            return False

    def start_worker(name: str) -> Process:
        worker = Process(name, ["./run_worker.sh"], env, tmp_path)
        request.addfinalizer(worker.stop)
        wait_for(worker_answers, 30, "the worker")
        return worker

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, 30, "the API")
    start_worker("worker-before").stop()  # restarted once before the outage, as in the field
    worker = start_worker("worker-steady")
    pid = worker.popen.pid
    job_ids = [submit(base, f"Under Load {i}") for i in range(6)]

    down_at = time.monotonic()
    for outage in range(3):
        if outage:
            # More load for each later outage: a report's sections are asked at once, so a report
            # is only three call latencies long, and on a fast machine the first six can all be
            # done by the third outage, which then waits for calls that never come.
            job_ids += [submit(base, f"Under Load {outage}.{i}") for i in range(2)]
        calls = len(fake_llm.requests)
        wait_for(lambda n=calls: len(fake_llm.requests) >= n + 2, 60, "calls in flight")
        os.kill(aof_redis.process.pid, signal.SIGKILL)
        aof_redis.process.wait()
        if outage == 0:
            down_at = time.monotonic()
            refused = requests.post(f"{base}/generate", json={"startup": "While Down"}, headers=AUTH, timeout=10)
            assert refused.status_code == 503 and refused.headers["Content-Type"].startswith("application/json")
            assert "Redis" in refused.json()["error"]
            page = requests.get(f"{base}/", headers={"Accept": "text/html", **AUTH}, timeout=10)
            assert page.status_code == 200 and "The job queue (Redis) is unreachable" in page.text
            assert status(base, job_ids[0])["job_id"] == job_ids[0]  # reads still work
        time.sleep(3)
        assert worker.alive(), worker.output()[-3000:]
        aof_redis.start()  # same port, same directory: the AOF file is replayed
        wait_for(worker_answers, 60, "the worker to reconnect")
        assert worker.alive() and worker.popen.pid == pid, worker.output()[-3000:]

    finals = [follow_job(base, job_id, timeout=240)[0] for job_id in job_ids]
    print(f"\nRedis SIGKILL x3 ({pool}): all jobs finished {time.monotonic() - down_at:.1f} s after the first outage")
    assert [f["state"] for f in finals] == ["SUCCESS"] * len(job_ids), [f.get("error") for f in finals]
    assert worker.alive() and worker.popen.pid == pid
    assert "Unrecoverable error" not in worker.output() and "AttributeError" not in worker.output()
    assert requests.post(f"{base}/generate", json={"startup": "After"}, headers=AUTH, timeout=10).status_code == 202
