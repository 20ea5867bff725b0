"""Builds the Celery app from `Settings`.

The web app builds one to queue tasks and read their states; the worker's command line gets one
from `worker.celery_app`. Every setting that matters for not losing a report says why it is set.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

from celery import Celery, current_task, signals
from celery.app.amqp import AMQP
from celery.backends.redis import RedisBackend
from kombu import Connection

from config import Settings
from worker.log_context import JobFilter
from worker.migrate import DatabaseNotCurrent, require_current
from worker.store import JobStore

if TYPE_CHECKING:
    from worker.sources.base import SearchBackend
    from worker.sources.fetch import Fetcher

TASK_NAME = "worker.tasks.generate_report"
STEPS_TASK_NAME = "worker.tasks.write_steps"
LOST_TASK_NAME = "worker.tasks.task_lost"
WATCH_TICK_TASK_NAME = "worker.watch_tasks.tick"
WATCH_TICK_ENTRY = "queue-due-reruns"
DELIVER_TASK_NAME = "worker.watch_tasks.deliver"


def step_task_id(job_id: str, first_key: str) -> str:
    """The Celery id of the task that writes a job's steps from `first_key` on: derived from the
    job's id, so that cancelling and the lost-job sweep can name every task of a job."""
    return f"{job_id}:{first_key}"


def job_of_task(task_id: str) -> str:
    """The job a task belongs to: the report's own task has the job's id, its steps `<job id>:<key>`."""
    return task_id.split(":", 1)[0]


#: The worker's log lines: Celery's default format, with the job a line is about (`JobOfTask`).
WORKER_LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s]%(job)s %(message)s"


class JobOfTask(JobFilter):
    """`JobFilter`, and in a task that has not said which job it works on (`working_on`), the
    task's own job, so each line of a worker says which report it is about."""

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        task_id = current_task.request.id if current_task else None
        if not record.job and task_id:
            record.job = f" job {job_of_task(task_id)}"
        return True


@signals.after_setup_logger.connect
def _name_the_job_in_each_line(logger: logging.Logger | None = None, **_: object) -> None:
    for handler in logger.handlers if logger is not None else ():
        handler.addFilter(JobOfTask())


class PollingRedisBackend(RedisBackend):
    """Celery's Redis result backend, minus the pub/sub subscription it opens for every task sent.

    Nothing here ever blocks on a result: the API reads a task's state with one GET and the SQL
    row holds the report. The stock subscription only holds a connection per sender, and when
    Redis is down it retries for about 20 seconds, stalling `POST /generate` before it can
    answer 503.
    """

    def on_task_call(self, producer: object, task_id: str) -> None:
        return None


def _backend_spec(url: str) -> str:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return f"{__name__}:PollingRedisBackend+{url}"
    return url


class CollectedConnection(Connection):
    """kombu's Connection, except that `collect()` also forgets the default channel.

    Works around celery 5.7.0 with kombu 5.7.0's Redis transport: a worker whose broker connection
    dropped while it held unacknowledged messages (late acks) and had a BRPOP out exited with
    "Unrecoverable error: AttributeError: 'NoneType' object has no attribute 'hostname'".
    Celery's `Consumer.on_connection_error_after_connected` calls `collect()`, then `close()`.
    In `collect()` the default channel's `close()` stops at its pending BRPOP read (Redis is gone)
    before the channel counts as closed, and kombu then sets `transport.client = None` but keeps
    `_default_channel`; `close()` closes that channel again, which restores its unacknowledged
    messages through a new Redis pool built from `transport.client`: None (the mechanism of
    celery/kombu#582; the second close() came with celery 5.7.0's fixes for celery/celery#9705,
    5.6.3 only collects). Forgetting the channel makes that `close()` a no-op, as it was before
    celery 5.7.0 added it; the old channel's own pool stays, so tasks still running acknowledge
    their messages once Redis is back (unacknowledged ones come back after the visibility timeout).
    tests/test_broker_outage.py fails its first test once an upgrade fixes this upstream.
    """

    def collect(self, socket_timeout: float | None = None) -> None:
        super().collect(socket_timeout)
        self._default_channel = None


class ReportsAMQP(AMQP):
    Connection = CollectedConnection


class ReportsCelery(Celery):
    """A Celery app that carries the project's settings and, in a worker, its job store."""

    amqp_cls = f"{__name__}:ReportsAMQP"

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        #: The LLM providers a worker process has built, reused by every task it runs.
        self.providers: dict[str, object] = {}

    @cached_property
    def fetcher(self) -> Fetcher:
        """One page fetcher per worker process, shared by its tasks: building its HTTPS client
        (loading the CA bundle) costs about 0.1 s of CPU, too much to pay per job. Its page cache
        is in the job database, so a re-run finds the pages the version before read."""
        from worker.sources.fetch import Fetcher
        from worker.sources.page_cache import SqlPageCache

        return Fetcher.from_settings(self.settings, cache=SqlPageCache(self.job_store.engine))

    @cached_property
    def search_backend(self) -> SearchBackend | None:
        """The search backend the settings choose, built once per process (None: no web search).
        A backend chosen but not configured raises `SearchConfigError` on every use."""
        from worker.sources import build_search_backend

        return build_search_backend(self.settings)

    @cached_property
    def job_store(self) -> JobStore:
        # Created on first use, so in a prefork worker each child opens its own connections
        # after the fork instead of sharing the parent's sockets.
        store = JobStore(self.settings.database_url)
        require_current(store.engine)
        return store


@signals.worker_init.connect
def _refuse_a_database_behind(sender: object = None, **_: object) -> None:
    """A worker on a database that is not at the newest revision stops before it takes a task,
    with the sentence saying what to run (a signal handler's other errors are only logged)."""
    app = getattr(sender, "app", None)
    if isinstance(app, ReportsCelery):
        try:
            app.job_store  # noqa: B018  (built here, at start, so that it checks the schema now)
        except DatabaseNotCurrent as exc:
            raise SystemExit(str(exc)) from None


def create_celery(settings: Settings) -> ReportsCelery:
    app = ReportsCelery(
        settings,
        main="startup_reports",
        broker=settings.broker_url,
        backend=_backend_spec(settings.result_backend_url),
        include=["worker.tasks", "worker.watch_tasks"],
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Acknowledge a message only when its task has finished, so a worker that dies mid-report
        # leaves the message in Redis to be delivered again instead of losing it.
        task_acks_late=True,
        # When a pool child is killed (OOM killer, SIGKILL) requeue its message rather than
        # acknowledging it as failed.
        task_reject_on_worker_lost=True,
        # Reserve only the task a process is about to run: report jobs are long, and a prefetched
        # one would wait behind a busy process while another worker sits idle.
        worker_prefetch_multiplier=1,
        # Recycle pool children now and then, so a slow leak in an SDK cannot grow without bound.
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        # The pool and its size live here, not on run_worker.sh's command line: one place.
        worker_pool=settings.worker_pool,
        worker_concurrency=settings.worker_concurrency,
        # No STARTED state in Redis: the job's row says which worker runs it, and nothing reads
        # a task's state but Celery's chord counting and Flower (which has the task events).
        task_track_started=False,
        # Task events feed Flower's live view (the same as `celery worker -E`). Not the "sent"
        # event, which made every submission publish a second message to Redis (a tenth of its
        # time, bench/RESULTS.md, issue 14): Flower shows a task from the moment a worker
        # receives it, and the queue's length on its Broker page.
        worker_send_task_events=True,
        task_send_sent_event=False,
        # A hard limit kills a stuck job; the soft one, a little earlier, lets it record why.
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.task_soft_time_limit,
        broker_transport_options={
            # Redis re-delivers an unacknowledged message after this long. It must exceed the
            # hard time limit plus the longest retry delay, or a merely slow job would be handed
            # to a second worker while the first still runs it (config.py enforces this).
            "visibility_timeout": settings.celery_visibility_timeout,
            # Look for such messages every few seconds (kombu's default scans only every 100 s), so
            # a job of a worker that was killed is delivered again soon after the timeout.
            "unacked_restore_interval": settings.unacked_restore_interval,
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 3,
            "health_check_interval": 10,
        },
        result_backend_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        # One result backend per process, not one per thread: redis-py's client is thread-safe,
        # and nothing here waits on a result (PollingRedisBackend). Per thread, each of the
        # worker's 32 threads and the API's built its own, with its own connection pool, at its
        # first task or submission: in the middle of the first burst (bench/RESULTS.md).
        result_backend_thread_safe=True,
        redis_socket_connect_timeout=3,
        redis_socket_timeout=10,
        redis_retry_on_timeout=True,
        # Say it explicitly (Celery 6 changes the default): a worker started before Redis keeps
        # trying to connect instead of exiting.
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        # Publishing from the web app gives up after about two seconds when Redis is down, so
        # `POST /generate` can answer 503 promptly instead of hanging the request.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        result_expires=settings.result_expires,
        # Keep the task's name and arguments with its state: Flower and debugging read them.
        result_extended=True,
        worker_hijack_root_logger=False,
        worker_log_format=WORKER_LOG_FORMAT,
        # Celery beat (run_beat.sh, one per deployment) sends one task: the tick that queues the
        # re-runs of watched companies that are due. The schedule itself is in the database.
        beat_schedule={
            WATCH_TICK_ENTRY: {
                "task": WATCH_TICK_TASK_NAME,
                "schedule": settings.watch_tick_seconds,
                # Ticks that waited for a worker longer than a tick are dropped: the next one does it all.
                "options": {"expires": settings.watch_tick_seconds},
            }
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    return app
