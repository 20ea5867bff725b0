"""The Celery tasks: thin on purpose. A batch of a report's steps is written by
`worker.report_job.write_batch`, and the research itself lives in `worker.pipeline`; neither knows
Celery. What stays here: the canvas, and the choice between retrying a task and failing its job.

A report is not one long task but a Celery canvas: `generate_report` (the job's own task, under
the job's id) queues a chain of the pipeline's stages and returns at once: the plan, the sections
(one task that writes up to `REPORT_PARALLELISM` of them at once, all eleven by default), the
summary; with `REPORT_PARALLELISM=1`, a task per step. Each task is short (one step, or sections
written side by side), so the time limit and Redis's visibility timeout bound about one call
rather than a whole report: a report of any length fits under them, and the tasks
of a worker that dies come back after the visibility timeout, not after a report's length. Every
step is checkpointed, so a task delivered again skips what is done and never pays twice.
"""

from __future__ import annotations

import gc
import logging
import random
from datetime import timedelta

import redis
from celery import Task, chain, current_app, group, shared_task, signals
from celery.canvas import Signature
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from worker.celery_setup import LOST_TASK_NAME, STEPS_TASK_NAME, TASK_NAME, job_of_task, step_task_id
from worker.models import utcnow
from worker.providers import build_provider
from worker.providers.base import FatalProviderError, TransientProviderError, backoff_delay
from worker.report_job import (
    JobCancelled,
    JobFailed,
    JobNeedsInput,
    TimeLimitReached,
    fail_job,
    remaining_stages,
    write_batch,
)
from worker.spend import CapReached
from worker.sweeper import Sweeper

logger = logging.getLogger(__name__)


def retry_delay(retries: int, base: float, maximum: float, retry_after: float | None = None) -> float:
    """How long the job waits before its next attempt: exponential backoff with jitter, but never
    sooner than the provider asked (`Retry-After`), and never longer than `maximum`, which the
    settings keep below the visibility timeout."""
    delay = backoff_delay(retries, base, maximum)
    if retry_after is not None:
        delay = max(delay, retry_after + random.uniform(0, min(1.0, 0.1 * retry_after)))
    return min(delay, maximum)


def describe_lost_task(meta: dict[str, object]) -> str:
    """A sentence for a task that Celery marked failed without our task recording why."""
    result = meta.get("result")
    exc_type = result.get("exc_type") if isinstance(result, dict) else type(result).__name__
    if exc_type == "TimeLimitExceeded":
        return (
            "The report hit the hard time limit and its worker process was stopped. Try again; if "
            "it keeps happening, raise TASK_TIME_LIMIT."
        )
    if exc_type == "WorkerLostError":
        return "The worker process running this report died. Try again; if it recurs, check the worker's memory."
    return f"The worker reported a failure ({exc_type}). Try again; the worker's log has the details."


def report_workflow(job_id: str, done: set[str], parallelism: int) -> Signature:
    """The canvas of the stages a job still has to run (`remaining_stages`). A task that fails
    without recording why (the hard time limit) fails its job through `task_lost`."""
    stages = []
    for batches in remaining_stages(done, parallelism):
        tasks = [
            write_steps.si(job_id, list(batch), parallelism)
            .set(task_id=step_task_id(job_id, batch[0]))
            .on_error(task_lost.s())
            for batch in batches
        ]
        stages.append(tasks[0] if len(tasks) == 1 else group(tasks))
    return chain(*stages)


@shared_task(bind=True, name=TASK_NAME, ignore_result=True)
def generate_report(self: Task, job_id: str) -> dict[str, object]:
    """Start a job: queue the canvas of its remaining stages. Also what the lost-job sweep sends
    again, so it resumes after the last stored step."""
    store = self.app.job_store
    job = store.get_job(job_id)
    if job is None:
        logger.warning("job %s has no row; nothing to do", job_id)
        return {"job_id": job_id, "skipped": "unknown job"}
    if job.is_finished:
        # A re-delivered message for a job that already finished: never pay for it twice.
        logger.info("job %s is already %s; skipping the duplicate delivery", job_id, job.state)
        return {"job_id": job_id, "skipped": f"already {job.state}"}
    done = set(store.load_checkpoints(job_id))
    store.touch(job_id)
    report_workflow(job_id, done, self.app.settings.report_parallelism).apply_async()
    return {"job_id": job_id, "queued": True}


@shared_task(bind=True, name=LOST_TASK_NAME, ignore_result=True)
def task_lost(self: Task, task_id: str, *_: object) -> None:
    """Errback of every step task. Failures inside a task's body have failed the job already;
    this handles the two that no body can record: Celery's hard time limit, and a process that
    died. Anything else raised outside the body (Redis gone while the next stage was being
    queued) leaves the job live: the lost-job sweep queues it again from its checkpoints."""
    meta = self.app.backend.get_task_meta(task_id)
    result = meta.get("result")
    exc_type = result.get("exc_type") if isinstance(result, dict) else type(result).__name__
    if exc_type in ("TimeLimitExceeded", "WorkerLostError"):
        self.app.job_store.mark_failed(job_of_task(task_id), error=describe_lost_task(meta))
    else:
        logger.warning("task %s failed outside its body (%s); the job is left to the lost-job sweep", task_id, exc_type)


@shared_task(bind=True, name=STEPS_TASK_NAME, max_retries=None)
def write_steps(self: Task, job_id: str, keys: list[str], parallelism: int = 1) -> dict[str, object]:
    """Write a batch of a job's steps (`write_batch`); decide between retrying the task and
    failing the job."""
    settings, store = self.app.settings, self.app.job_store
    attempt, worker = self.request.retries + 1, self.request.hostname or ""
    try:
        write_batch(job_id, keys, resources=self.app, parallelism=parallelism, worker=worker, attempt=attempt)
    except TransientProviderError as exc:
        if self.request.retries >= settings.task_max_retries:
            gave_up = "the provider may be down or rate-limiting this key. Try again in a few minutes."
            raise fail_job(store, job_id, f"{exc} Gave up after {attempt} attempts: {gave_up}") from None
        delay = retry_delay(
            self.request.retries, settings.retry_backoff_base, settings.retry_backoff_max, exc.retry_after
        )
        store.mark_retry(job_id, error=str(exc), retry_at=utcnow() + timedelta(seconds=delay))
        store.clear_providers_down(job_id)  # every provider failed: the retry asks them all again
        logger.info("job %s: transient error, retry %d of %s in %.1f s: %s", job_id, attempt, keys, delay, exc)
        raise self.retry(exc=exc, countdown=delay, max_retries=settings.task_max_retries) from None
    except FatalProviderError as exc:
        raise fail_job(store, job_id, str(exc)) from None
    except (SoftTimeLimitExceeded, TimeLimitReached):
        message = (
            f"A step of the report took longer than the {settings.task_time_limit}-second limit and was "
            "stopped. Try again; if it keeps happening, raise TASK_TIME_LIMIT."
        )
        raise fail_job(store, job_id, message) from None
    except JobCancelled:
        logger.info("job %s was cancelled; stopped before its next step", job_id)
        raise Ignore() from None
    except CapReached:  # stored as a partial report: no retry and no later stage
        raise Ignore() from None
    except JobNeedsInput as exc:  # no retry and no later stage: the analyst's choice queues it again
        logger.info("job %s asks which company it is about: %s", job_id, exc)
        raise Ignore() from None
    except JobFailed:
        raise
    except Exception as exc:
        logger.exception("job %s failed with an unexpected error", job_id)
        store.mark_failed(
            job_id,
            error=(
                f"An internal error stopped this report ({type(exc).__name__}). The details are in "
                "the worker's log; try again, and report it if it happens again."
            ),
        )
        raise
    # The same value on every delivery: Celery counts a chord's finished batches by it.
    return {"job_id": job_id, "steps": keys}


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_: object) -> None:
    """A pool child must not share the parent's sockets: drop the inherited database pool."""
    app = current_app._get_current_object()
    if "job_store" in app.__dict__:
        app.job_store.engine.dispose(close=False)
    # Nor the parent's HTTP clients: each child builds its own providers (the SDKs stay imported).
    app.providers.clear()
    gc.freeze()  # what the child inherited stays out of its collections (see `_freeze_what_is_loaded`)


# How long a worker keeps trying to queue a report's next stage while Redis is away: about five
# minutes, so a Redis restart never strands a report between two stages. (The web app gives up
# after two seconds instead, to answer 503 at once.)
WORKER_PUBLISH_RETRY = {"max_retries": 100, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 3}


@signals.worker_init.connect
def _prepare_worker(sender: object = None, **_: object) -> None:
    """Patient publishing, and the providers built before the first task: importing an SDK takes
    about half a second under the import lock, which every task that arrives meanwhile waits on."""
    app = current_app._get_current_object()
    app.conf.task_publish_retry_policy = WORKER_PUBLISH_RETRY
    # Likewise storing a finished task's result: without it, a step task that finishes while Redis
    # is away fails outside its body, its chord never completes, and the job waits for the
    # visibility timeout (16 minutes) to be delivered again. Worker only: the web app must not wait.
    app.conf.result_backend_always_retry = True
    app.conf.result_backend_max_retries = WORKER_PUBLISH_RETRY["max_retries"]
    app.conf.result_backend_max_sleep_between_retries_ms = 3000
    try:
        build_provider(app.settings, cache=app.providers)
    except FatalProviderError as exc:  # a bad setting: each task will fail with this sentence
        logger.error("the language model provider is misconfigured: %s", exc)


@signals.worker_ready.connect
def _freeze_what_is_loaded(**_: object) -> None:
    """Move everything loaded so far (Celery, SQLAlchemy, the SDKs) out of the garbage collector's
    reach, as the API's processes do (webapp/gunicorn_config.py): it lives as long as the process.
    Left in, a full collection walked it once a run, holding the GIL for about 150 ms while 32
    threads started reports (bench/RESULTS.md, "Issue 14's POST figure, once more")."""
    gc.collect()
    gc.freeze()


@signals.worker_ready.connect
def _start_sweeper(sender: object = None, **_: object) -> None:
    app = current_app._get_current_object()
    settings = app.settings
    client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=3, socket_timeout=10)
    sweeper = Sweeper(
        app.job_store, app, client, settings.sweep_interval, settings.sweep_grace, settings.needs_input_days
    )
    sweeper.start()
    app.sweeper = sweeper


@signals.worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    app = current_app._get_current_object()
    if getattr(app, "sweeper", None):
        app.sweeper.stopped.set()
