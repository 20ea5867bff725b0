"""The Celery task: thin on purpose. It loads the job by id, runs the pipeline, reports progress,
stores the result, and decides between retrying and failing. The research itself lives in
`worker.pipeline`, which knows nothing of Celery.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

import redis
from celery import current_app, shared_task, signals
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from worker.celery_setup import TASK_NAME
from worker.pipeline import Checkpoint, Progress, run_pipeline
from worker.pricing import estimate_cost
from worker.providers import build_provider
from worker.providers.base import FatalProviderError, TransientProviderError, backoff_delay
from worker.store import REVOKED, utcnow
from worker.sweeper import Sweeper

logger = logging.getLogger(__name__)


# A job that has taken down its worker process this many times (the OOM killer, a crash in a
# library) is failed instead of being delivered again and again.
MAX_DELIVERIES = 5


class JobFailed(Exception):
    """Raised to mark the Celery task FAILURE once the job's row holds the reason."""


class JobCancelled(Exception):
    """The user cancelled the job while it ran: stop before the next provider call."""


def retry_delay(retries: int, base: float, maximum: float, retry_after: float | None = None) -> float:
    """How long the job waits before its next attempt: exponential backoff with jitter, but never
    sooner than the provider asked (`Retry-After`), and never longer than `maximum`, which the
    settings keep below the visibility timeout."""
    delay = backoff_delay(retries, base, maximum)
    if retry_after is not None:
        delay = max(delay, retry_after + random.uniform(0, min(1.0, 0.1 * retry_after)))
    return min(delay, maximum)


@shared_task(bind=True, name=TASK_NAME, max_retries=None)
def generate_report(self, job_id: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    settings = self.app.settings
    store = self.app.job_store
    job = store.get_job(job_id)
    if job is None:
        logger.warning("job %s has no row; nothing to do", job_id)
        return {"job_id": job_id, "skipped": "unknown job"}
    if job.is_finished:
        # A re-delivered message for a job that already finished: never pay for it twice.
        logger.info("job %s is already %s; skipping the duplicate delivery", job_id, job.state)
        return {"job_id": job_id, "skipped": f"already {job.state}"}

    attempt = self.request.retries + 1
    deliveries = store.mark_started(job_id, worker=self.request.hostname or "", attempt=attempt)
    if deliveries > MAX_DELIVERIES:
        message = (
            f"This report stopped its worker process {deliveries - 1} times, so it was not tried again. "
            "The worker may be running out of memory: check the worker's log and memory, then retry."
        )
        store.mark_failed(job_id, error=message)
        raise JobFailed(message)

    # The threads pool enforces no Celery time limit, so the job keeps its own: checked before
    # every step, while each step is bounded by the providers' timeouts and retries.
    deadline = time.monotonic() + settings.task_soft_time_limit

    def on_progress(progress: Progress) -> None:
        if not store.mark_progress(job_id, progress):
            raise JobCancelled(job_id)
        if time.monotonic() > deadline and progress.label != "Done":
            raise SoftTimeLimitExceeded()
        try:
            # task_id explicitly: sections report from threads, where Celery's request is unset.
            self.update_state(task_id=job_id, state="PROGRESS", meta={"job_id": job_id, **progress.as_dict()})
        except Exception:  # Redis hiccup: the row above already holds the progress.
            logger.warning("could not publish progress of job %s to Redis", job_id, exc_info=True)

    def on_checkpoint(checkpoint: Checkpoint) -> None:
        cost = estimate_cost(settings.llm_prices, checkpoint.model, checkpoint.input_tokens, checkpoint.output_tokens)
        store.save_checkpoint(job_id, checkpoint, cost)

    max_retries = settings.task_max_retries
    try:
        provider = build_provider(settings)
        report = run_pipeline(
            job.startup,
            provider,
            on_progress=on_progress,
            checkpoints=store.load_checkpoints(job_id),
            on_checkpoint=on_checkpoint,
            parallelism=settings.report_parallelism,
        )
    except TransientProviderError as exc:
        store.add_failed_attempts(job_id, exc.failed_attempts)
        if self.request.retries >= max_retries:
            message = (
                f"{exc} Gave up after {attempt} attempts: the provider may be down or rate-limiting "
                "this key. Try again in a few minutes."
            )
            store.mark_failed(job_id, error=message)
            raise JobFailed(message) from None
        delay = retry_delay(
            self.request.retries, settings.retry_backoff_base, settings.retry_backoff_max, exc.retry_after
        )
        store.mark_retry(job_id, error=str(exc), retry_at=utcnow() + timedelta(seconds=delay))
        logger.info("job %s: transient error, retry %d in %.1f s: %s", job_id, attempt, delay, exc)
        raise self.retry(exc=exc, countdown=delay, max_retries=max_retries) from None
    except FatalProviderError as exc:
        store.add_failed_attempts(job_id, exc.failed_attempts)
        store.mark_failed(job_id, error=str(exc))
        raise JobFailed(str(exc)) from None
    except JobCancelled:
        logger.info("job %s was cancelled; stopped before its next step", job_id)
        self.update_state(task_id=job_id, state=REVOKED, meta={"job_id": job_id})
        raise Ignore() from None
    except SoftTimeLimitExceeded:
        message = (
            f"The report took longer than the {settings.task_time_limit}-second limit and was "
            "stopped. Try again; if it keeps happening, raise TASK_TIME_LIMIT."
        )
        store.mark_failed(job_id, error=message)
        raise JobFailed(message) from None
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

    store.mark_succeeded(job_id, report_md=report.markdown, provider=report.provider_label)
    return {"job_id": job_id, "chars": len(report.markdown), "calls": report.calls}


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_: object) -> None:
    """A pool child must not share the parent's database sockets: drop the inherited pool."""
    app = current_app._get_current_object()
    if "job_store" in app.__dict__:
        app.job_store.engine.dispose(close=False)


@signals.worker_ready.connect
def _start_sweeper(sender: object = None, **_: object) -> None:
    app = current_app._get_current_object()
    settings = app.settings
    client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=3, socket_timeout=10)
    sweeper = Sweeper(app.job_store, app, client, settings.sweep_interval, settings.sweep_grace)
    sweeper.start()
    app.sweeper = sweeper


@signals.worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    app = current_app._get_current_object()
    if getattr(app, "sweeper", None):
        app.sweeper.stopped.set()
