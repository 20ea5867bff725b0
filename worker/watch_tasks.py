"""The Celery tasks of following companies, thin on purpose: the schedule's tick, which Celery
beat sends every WATCH_TICK_SECONDS (`worker.watches` decides what is due), and the delivery of
one alert (`worker.alerts` makes the attempt; here only the retry with its backoff)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from celery import Task, shared_task

from worker.alerts import attempt_delivery, backoff
from worker.celery_setup import DELIVER_TASK_NAME, WATCH_TICK_TASK_NAME
from worker.jobs import JobService
from worker.models import Job, utcnow
from worker.research import Material
from worker.watches import WATCH_TRIGGER, Clock, Rerun, Submit, queue_due_reruns

logger = logging.getLogger(__name__)

#: What "now" is for the tick when beat sends it without one; a test passes `now` instead.
clock: Clock = utcnow


@shared_task(bind=True, name=WATCH_TICK_TASK_NAME, ignore_result=True)
def tick(self: Task, now: str | None = None) -> list[str]:
    """Queue the re-runs of the companies that are due at `now` (ISO 8601; the clock's time when
    beat sends it). Safe to run any number of times at once: each period is claimed once."""
    moment = datetime.fromisoformat(now) if now else clock()
    service = JobService(self.app.job_store, self.app)
    return queue_due_reruns(self.app.job_store, submitter(service), moment)


def submitter(service: JobService) -> Submit:
    """How the tick queues a re-run: the same path as a report asked for by the API, with the
    analyst's material of the version it builds on (notes and documents: a re-run must not drop
    them, and with them its sources stay comparable, so unchanged sections are kept). A company
    without a website takes the search's best match rather than wait for an answer nobody is
    there to give."""

    def submit(rerun: Rerun) -> Job:
        before = service.store.load_material(rerun.previous_job_id) if rerun.previous_job_id else Material()
        return service.submit(
            rerun.startup,
            rerun.owner,
            material=replace(before, website=rerun.website or before.website),
            on_ambiguous="ask" if rerun.website else "best",
            trigger=WATCH_TRIGGER,
            previous_job_id=rerun.previous_job_id,
        )

    return submit


@shared_task(bind=True, name=DELIVER_TASK_NAME, max_retries=None, ignore_result=True)
def deliver(self: Task, delivery_id: int) -> str:
    """Send one alert; on a failure worth retrying, try again after DELIVERY_BACKOFF_BASE doubled
    per attempt (at most DELIVERY_BACKOFF_MAX), until DELIVERY_MAX_ATTEMPTS. The row counts the
    attempts, so a re-delivered task never adds attempts beyond the limit."""
    settings = self.app.settings
    attempt = attempt_delivery(self.app.job_store, settings, delivery_id)
    if attempt.outcome == "retry":
        raise self.retry(countdown=backoff(attempt.attempts, settings))
    return attempt.outcome
