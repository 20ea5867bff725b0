"""Following companies with real processes: `run_beat.sh` and `run_worker.sh` queue one re-run per
period although beat is restarted mid-period and a second beat runs by mistake; alerts go out as
Celery tasks that retry with backoff until a receiver that was down accepts them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from config import Settings
from tests.conftest import Process, wait_for, worker_env
from tests.fakes.smtp_server import FakeSMTPServer
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.test_alerts import SECRET, deliveries, verify, watched_change
from tests.test_watches import add_version, company_row, make_company, watch_jobs
from worker.alerts import SIGNATURE_HEADER, alert_watchers
from worker.celery_setup import create_celery
from worker.models import Company, utcnow
from worker.store import JobStore
from worker.watches import watch

pytestmark = pytest.mark.integration

# Seconds: long enough to restart beat well within one period (a beat takes some 5 s to start and
# tick here), short enough to see the next.
PERIOD = 30
TICK = "0.5"


@pytest.fixture
def start_beat(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start beat with `./run_beat.sh` and a short tick; every beat is stopped at the end, also
    when the test fails (while Redis is still up: a beat without its Redis ignores SIGTERM)."""
    started: list[Process] = []

    def start(name: str, *args: str) -> Process:
        beat = Process(name, ["./run_beat.sh", *args], worker_env(settings, WATCH_TICK_SECONDS=TICK), tmp_path)
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.stop()


def ticks_sent(beat: Process) -> int:
    return beat.output().count("Sending due task queue-due-reruns")


def ticks_done(worker: Process) -> int:
    return sum("worker.watch_tasks.tick[" in line and "succeeded" in line for line in worker.output().splitlines())


def test_beat_restarted_mid_period_and_a_second_beat_queue_one_rerun_per_period(
    app: Flask, settings: Settings, start_worker, start_beat, tmp_path: Path
) -> None:
    store: JobStore = app.extensions["jobs"].store
    company_id = make_company(store)
    version = add_version(store, company_id, utcnow() - timedelta(days=1))
    admin_id = app.extensions["accounts"].by_name("admin").id
    watch(store, admin_id, company_id, PERIOD)
    worker = start_worker(OFFLINE_STEP_DELAY="0")
    first_due = utcnow() + timedelta(seconds=1)
    with store.session() as session:
        session.get(Company, company_id).next_run_at = first_due

    beat = start_beat("beat-1")
    wait_for(lambda: watch_jobs(store), 20, "the first re-run")
    first = watch_jobs(store)[0]
    assert (first.trigger, first.previous_job_id, first.created_by) == ("watch", version, "admin")

    # Mid-period: beat restarts, and a second beat (its own schedule file) starts by mistake.
    beat.stop()
    ticks_run = ticks_done(worker)
    beat = start_beat("beat-1-again")
    second_beat = start_beat("beat-2", f"--schedule={tmp_path / 'second-schedule'}")
    wait_for(lambda: ticks_sent(beat) >= 3 and ticks_sent(second_beat) >= 3, 20, "both beats to tick")
    wait_for(lambda: ticks_done(worker) >= ticks_run + 6, 20, "the worker to run the new beats' ticks")
    assert utcnow() < first_due + timedelta(seconds=PERIOD - 1), "too slow to test within one period"
    assert len(watch_jobs(store)) == 1  # still the first period: no second run

    wait_for(lambda: len(watch_jobs(store)) >= 2, PERIOD + 10, "the next period's re-run")
    time.sleep(1.5)  # a few more ticks from both beats
    beat.stop()
    second_beat.stop()
    time.sleep(1)  # the last ticks are done

    jobs = watch_jobs(store)
    periods = [int((job.created_at - first_due).total_seconds() // PERIOD) for job in jobs]
    assert len(set(periods)) == len(periods), periods  # never two re-runs in one period
    claimed = int((company_row(store, company_id).next_run_at - first_due).total_seconds() // PERIOD)
    assert claimed >= len(jobs) >= 2
    assert list((settings.data_dir).glob("celerybeat-schedule*")), "beat keeps its schedule file in DATA_DIR"


def test_alerts_are_retried_by_celery_until_the_receiver_is_back(
    app: Flask, settings: Settings, start_worker, tmp_path: Path
) -> None:
    smtp = FakeSMTPServer().start()
    receiver = WebhookReceiver(fail_first=2).start()  # down for its first two deliveries
    try:
        alerting = {
            "SMTP_URL": smtp.url,
            "WEBHOOK_URL": f"{receiver.url}/deployment",
            "WEBHOOK_SECRET": SECRET,
            "FETCH_ALLOW_PRIVATE": "true",  # the fake receiver listens on 127.0.0.1
            "DELIVERY_BACKOFF_BASE": "0.3",
        }
        start_worker(**alerting)
        store: JobStore = app.extensions["jobs"].store
        change_id = watched_change(app, receiver)
        here = settings.model_copy(
            update={"smtp_url": smtp.url, "webhook_url": alerting["WEBHOOK_URL"], "webhook_secret": SECRET}
        )
        ids = alert_watchers(create_celery(here), change_id)
        assert len(ids) == 4

        wait_for(lambda: all(d.state == "sent" for d in deliveries(store).values()), 30, "every delivery sent")
        rows = deliveries(store)
        assert sum(row.attempts for row in rows.values()) == 4 + 2  # the two refused requests, retried
        for path in ("/admin", "/alice", "/deployment"):
            accepted = receiver.accepted(path)
            assert len(accepted) == 1, path
            assert verify(accepted[0].body, accepted[0].headers[SIGNATURE_HEADER])
        assert json.loads(receiver.accepted("/deployment")[0].body)["change_id"] == change_id
        assert len(receiver.received()) == 3 + 2
        assert [m["To"] for m in smtp.messages] == ["admin@acme.example"]
    finally:
        smtp.stop()
        receiver.stop()
