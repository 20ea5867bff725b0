"""The job API the web app calls: submit a job, read a job, list recent jobs, and who may do which.

It hides Celery from the web app: the row is written first, then the task is queued under the
job's id; if Redis cannot take the message the row is removed again, so nothing is half-stored.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Collection
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from celery import Celery

from worker.celery_setup import TASK_NAME, step_task_id
from worker.draft import Draft, draft_of, needs_research
from worker.models import Job, JobState, startup_key
from worker.pipeline import step_labels
from worker.research import Document, Material
from worker.sources.documents import looks_like_pdf
from worker.store import IdempotencyKeyTaken, JobStore

if TYPE_CHECKING:
    from config import Settings

logger = logging.getLogger(__name__)


def is_job_id(value: str) -> bool:
    """Job ids are canonical UUID strings; anything else cannot name a job."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


class QueueUnavailable(Exception):
    """The broker (Redis) could not take the job."""


class NotRetryable(Exception):
    """The job cannot be retried; the message says why."""


class NotCancellable(Exception):
    """The job cannot be cancelled (it has finished); the message says why."""


class NotAsking(Exception):
    """The job does not ask which company it is about (any more); the message says why."""


class NotContinuable(Exception):
    """The job cannot be continued under a higher cost cap; the message says why."""


class NoSuchJob(LookupError):
    """No job with that id that the requester may see: never issued, or another user's while
    PRIVATE_REPORTS is on (the two look the same from outside)."""


class NotAllowed(Exception):
    """The requester may see the job but not act on it: only its owner and admins may."""


class Requester(Protocol):
    """Who asks: the web app's current user (`webapp.accounts.Analyst`), by session or token."""

    @property
    def username(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


class InvalidMaterial(ValueError):
    """A document the analyst uploaded cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Upload:
    """A file as the web app received it."""

    filename: str
    data: bytes


def accept_documents(uploads: list[Upload], settings: Settings) -> tuple[Document, ...]:
    """The uploaded PDFs as they are, or `InvalidMaterial` naming the file and the problem.

    Only what costs nothing is checked here: the count, the size and the header. The text is read
    by the worker, in a child process with time and memory limits (`worker.sources.documents`),
    because a PDF of a few KB can take minutes and gigabytes to read, and a web request must not."""
    max_bytes, max_files = settings.upload_max_bytes, settings.upload_max_files
    if len(uploads) > max_files:
        raise InvalidMaterial(
            f"A job may bring at most {max_files} documents; this one has {len(uploads)}. "
            "Merge them, or keep the ones that matter most."
        )
    documents = []
    for upload in uploads:
        name = upload.filename or "document.pdf"
        if len(upload.data) > max_bytes:
            raise InvalidMaterial(f"{name} is larger than the {max_bytes // (1024 * 1024)} MB a document may be.")
        if not looks_like_pdf(upload.data):
            raise InvalidMaterial(f"{name}: The file is not a PDF.")
        documents.append(Document(name, pdf=upload.data))
    return tuple(documents)


@dataclass(frozen=True)
class Submission:
    job: Job
    #: "queued" for a new job, "joined" for a live job of the same startup, "duplicate" for a
    #: repeated Idempotency-Key.
    outcome: str


class WorkerWatch:
    """Which workers answer Celery's ping, as far as this process knows, without ever making a
    caller wait for a ping (load balancers probe /healthz with short timeouts).

    The first question starts a thread that pings every `ttl` seconds while anyone keeps asking,
    and stops after `idle` seconds without a question; so the answer is at most `ttl` + `timeout`
    old, whichever process of the API is asked. None means not known yet (the first ping is out,
    or the last answer is too old to tell)."""

    def __init__(self, celery: Celery, *, ttl: float = 3.0, timeout: float = 1.0, idle: float = 60.0) -> None:
        self.celery = celery
        self.ttl = ttl
        self.timeout = timeout
        self.idle = idle
        self._lock = threading.Lock()
        self._answer: list[str] | None = None
        self._answered_at = -math.inf
        self._asked_at = -math.inf
        self._pinging = False
        self._stop = threading.Event()

    def answering(self) -> list[str] | None:
        """The names of the workers that answered the latest ping, or None while unknown."""
        now = time.monotonic()
        with self._lock:
            self._asked_at = now
            if not self._pinging:
                self._pinging = True
                threading.Thread(target=self._ping_while_asked, name="worker-ping", daemon=True).start()
            fresh = now - self._answered_at <= self.ttl + self.timeout + 1
            return self._answer if fresh else None

    def _ping_while_asked(self) -> None:
        while True:
            try:
                replies = self.celery.control.ping(timeout=self.timeout)
                self._answer = sorted(name for reply in replies for name in reply)
                self._answered_at = time.monotonic()
            except Exception as exc:  # Redis away: the answer ages into None; /healthz reports Redis
                logger.warning("could not ping the workers: %s", exc)
            self._stop.wait(self.ttl)
            with self._lock:
                if self._stop.is_set() or time.monotonic() - self._asked_at > self.idle:
                    self._pinging = False
                    return

    def stop(self) -> None:
        """End the pinging thread now (tests, whose apps come and go, call it)."""
        self._stop.set()


class JobService:
    def __init__(self, store: JobStore, celery: Celery, *, private_reports: bool = False) -> None:
        self.store = store
        self.celery = celery
        self.workers = WorkerWatch(celery)
        self.private_reports = private_reports

    # Who may see and do what: every route asks here, and lists are narrowed in SQL.

    def may_act(self, job: Job, requester: Requester) -> bool:
        """Cancel and retry are for the job's owner and admins; a job without an owner (made
        before jobs had owners) is for admins alone."""
        return requester.is_admin or (job.created_by is not None and job.created_by == requester.username)

    def may_read(self, job: Job, requester: Requester) -> bool:
        """Every user reads every report (a team shares them), unless PRIVATE_REPORTS is on: then
        only those who may act on the job do."""
        return not self.private_reports or self.may_act(job, requester)

    def _owner_filter(self, requester: Requester) -> str | None:
        """The owner a list is narrowed to (in SQL, so that pages stay whole), or None for all."""
        return requester.username if self.private_reports and not requester.is_admin else None

    def readable_owner(self, requester: Requester) -> str | None:
        """Whose reports `requester` may read, for lists made elsewhere (a company's versions):
        one owner's, or None for everyone's."""
        return self._owner_filter(requester)

    def warm_up(self, connections: int = 1) -> None:
        """Do once, before the first request, what the first request would otherwise pay for
        (ten times what the next ones pay): the database connection and its compiled
        queries, the result backend, and `connections` broker connections (one per thread that
        may submit at the same time, up to the producer pool's limit). Reads, connects and
        declares the queue (as the first submission would); writes no job."""
        self.store.warm_up()
        self.celery.backend  # noqa: B018 (built on first use, from entry points)
        self.celery.amqp.send_task_message  # noqa: B018 (built on first use, with its event dispatcher)
        queue = self.celery.amqp.queues[self.celery.conf.task_default_queue]
        limit = self.celery.conf.broker_pool_limit  # holding more than that at once would wait forever
        with ExitStack() as held:  # all held at once, so that the pool opens that many
            for _ in range(min(connections, limit) if limit else connections):
                producer = held.enter_context(self.celery.producer_pool.acquire(block=True))
                producer.connection.ensure_connection(max_retries=1)  # Redis down: one retry, then raise
                producer.maybe_declare(queue)

    def joinable(
        self, startup: str, requester: Requester, *, fresh: bool = False, material: Material | None = None
    ) -> Job | None:
        """The live job a request for `startup` would join instead of starting one (see
        `request_report`), or None."""
        if fresh or material:
            return None
        return self.store.find_live(startup, owner=self._owner_filter(requester))

    def count_starting(
        self, entries: list[tuple[str, Material | None]], requester: Requester, *, fresh: bool = False
    ) -> int:
        """How many of the requests (name, material) would start a report rather than join a live
        one (`joinable`, for all of them in one query): what a budget check counts."""
        if fresh:
            return len(entries)
        plain = [startup_key(name) for name, material in entries if not material]
        live = self.store.live_startup_keys(plain, owner=self._owner_filter(requester))
        return len(entries) - sum(1 for key in plain if key in live)

    def request_report(
        self,
        startup: str,
        requester: Requester,
        *,
        idempotency_key: str | None = None,
        fresh: bool = False,
        material: Material | None = None,
        on_ambiguous: str = "ask",
        max_cost_usd: float | None = None,
    ) -> Submission:
        """What a user's request for a report leads to: the job an Idempotency-Key already made,
        the live job of the same startup (unless `fresh`, or the request brings material of its
        own), or a new job. A live job is joined only if the requester may read it."""
        created_by = requester.username
        if idempotency_key:
            existing = self.store.find_by_idempotency_key(created_by, idempotency_key)
            if existing is not None:
                return Submission(existing, "duplicate")
        live = self.joinable(startup, requester, fresh=fresh, material=material)
        if live is not None:
            return Submission(live, "joined")
        try:
            job = self.submit(
                startup, created_by, idempotency_key, material, on_ambiguous=on_ambiguous, max_cost_usd=max_cost_usd
            )
            return Submission(job, "queued")
        except IdempotencyKeyTaken as taken:
            return Submission(taken.job, "duplicate")

    def cancel(self, job_id: str, requester: Requester) -> Job:
        """Cancel a queued or running job: it is marked at once, the worker running it is stopped,
        and a worker that has yet to start it will skip it. Only its owner or an admin may."""
        job = self.get(job_id, requester)
        if job is None:
            raise NoSuchJob(f"No job with id {job_id!r}.")
        if not self.may_act(job, requester):
            raise NotAllowed("Only the user who asked for this report, or an admin, may cancel it.")
        if not self.store.mark_cancelled(job_id, by=requester.username):
            raise NotCancellable(f"This job has already finished ({job.state}); there is nothing to cancel.")
        try:
            # Every task the job has or will have: the one running is stopped, the others skipped.
            # With prefork, SIGKILL ends the pool process mid-call, so not one more provider call
            # is paid for; each process runs one task at a time, so nothing else is lost with it.
            task_ids = [job_id, *(step_task_id(job_id, key) for key, _ in step_labels())]
            self.celery.control.revoke(task_ids, terminate=True, signal="SIGKILL")
        except Exception as exc:  # Redis down: the row says REVOKED, the task checks it between steps
            logger.warning("could not broadcast the cancellation of %s: %s", job_id, exc)
        return self.store.get_job(job_id)

    def submit(
        self,
        startup: str,
        created_by: str | None = None,
        idempotency_key: str | None = None,
        material: Material | None = None,
        job_id: str | None = None,
        on_ambiguous: str = "ask",
        *,
        trigger: str | None = None,
        previous_job_id: str | None = None,
        max_cost_usd: float | None = None,
    ) -> Job:
        """Record a job and queue its task; raise `QueueUnavailable` (storing nothing) on failure.
        `trigger` "watch" and `previous_job_id` mark a re-run queued by a watch's schedule;
        `max_cost_usd` is its cost cap (None: the worker's MAX_COST_PER_REPORT_USD, if set)."""
        job = self.store.create_job(
            startup,
            created_by,
            idempotency_key=idempotency_key,
            material=material,
            job_id=job_id,
            on_ambiguous=on_ambiguous,
            trigger=trigger,
            previous_job_id=previous_job_id,
            max_cost_usd=max_cost_usd,
        )
        try:
            self._queue(job.id)
        except QueueUnavailable:
            self.store.delete_job(job.id)
            raise
        return job

    def choose_company(self, job_id: str, website: str, requester: Requester) -> Job:
        """The analyst's answer to a job that asks which company its name means: the job is queued
        again, with `website` as the company's, and resumes from its start (nothing was paid).
        Only its owner or an admin may answer."""
        job = self.get(job_id, requester)
        if job is None:
            raise NoSuchJob(f"No job with id {job_id!r}.")
        if not self.may_act(job, requester):
            raise NotAllowed("Only the user who asked for this report, or an admin, may choose the company.")
        if not self.store.choose_company(job_id, website):
            raise NotAsking(f"This job does not ask which company it is about (it is {job.state}).")
        try:
            self._queue(job_id)
        except QueueUnavailable:
            self.store.mark_needs_input(job_id, job.candidate_list)  # ask again: nothing is lost
            raise
        return self.store.get_job(job_id)

    def continue_report(self, job_id: str, max_cost_usd: float, requester: Requester) -> Job:
        """Resume a report that stopped at its cost cap, under the higher cap `max_cost_usd`: the
        same job is queued again and writes only the steps it lacks (`remaining_stages`). Only its
        owner or an admin may; the cap must be above what it has spent (the web app checks it
        against MAX_COST_PER_REPORT_USD)."""
        job = self.get(job_id, requester)
        if job is None:
            raise NoSuchJob(f"No job with id {job_id!r}.")
        if not self.may_act(job, requester):
            raise NotAllowed("Only the user who asked for this report, or an admin, may continue it.")
        if job.state not in (JobState.SUCCESS, JobState.FAILURE) or not job.partial:
            raise NotContinuable(
                f"Only a report that stopped at its cost cap can be continued (this one is {job.state})."
            )
        if job.cancelled_by:
            # Cancelling revoked its tasks' ids, and Celery's workers drop a task whose id they
            # hold as revoked (for hours): a continuation queued now would never run.
            raise NotContinuable(
                f"Its continuation was cancelled by {job.cancelled_by}, so it cannot be continued again; "
                "its partial report stays as it is. Ask for a fresh report to write it whole."
            )
        if max_cost_usd <= job.cost_usd:
            raise NotContinuable(f"The new cap must be above the ${job.cost_usd:.4f} this report has spent already.")
        if not self.store.continue_partial(job_id, max_cost_usd):
            raise NotContinuable("This report is being continued already.")
        try:
            self._queue(job_id)
        except QueueUnavailable:
            self.store.undo_continue(job)  # the partial report stays as it was
            raise
        return self.store.get_job(job_id)

    def _queue(self, job_id: str) -> None:
        try:
            self.celery.send_task(TASK_NAME, args=[job_id], task_id=job_id)
        except Exception as exc:
            logger.warning("could not queue job %s: %s", job_id, exc)
            raise QueueUnavailable(str(exc)) from exc

    def get(self, job_id: str, requester: Requester) -> Job | None:
        """The job's row, if `requester` may read it: one database read, nothing from Redis. The
        row is the whole truth: each task records its own failure, and `worker.tasks.task_lost` the
        two that no task can record itself (a hard time limit, a process that died)."""
        job = self.store.get_job(job_id) if is_job_id(job_id) else None
        return job if job is not None and self.may_read(job, requester) else None

    def draft(self, job: Job, *, skip: Collection[str] = ()) -> Draft:
        """What `job` has written so far (`worker.draft`), less what the reader's page shows
        already (`skip`); its research is read only when something new needs it."""
        checkpoints = self.store.load_checkpoints(job.id)
        research = self.store.load_research(job.id) if needs_research(checkpoints, skip) else None
        return draft_of(checkpoints, research, skip=skip)

    def retry(self, job_id: str, requester: Requester) -> Job:
        """Queue a failed job's startup again as a new job, once: a second call returns the same
        new job instead of paying for another. Only its owner or an admin may; the new job is the
        owner's, as the failed one was (an admin retries it on the owner's behalf)."""
        job = self.get(job_id, requester)
        if job is None:
            raise NoSuchJob(f"No job with id {job_id!r}.")
        if not self.may_act(job, requester):
            raise NotAllowed("Only the user who asked for this report, or an admin, may retry it.")
        if job.state != JobState.FAILURE:
            raise NotRetryable(f"Only a failed job can be retried (this one is {job.state}).")
        new_job_id = str(uuid.uuid4())
        if not self.store.claim_retry(job_id, new_job_id):
            job = self.store.get_job(job_id)
            existing = self.store.get_job(job.retried_as) if job and job.retried_as else None
            if existing is None or not self.may_read(existing, requester):
                raise NotRetryable("This job is being retried already.")
            return existing
        owner = job.created_by or requester.username
        try:
            material = self.store.load_material(job_id)
            on_ambiguous = job.on_ambiguous or "ask"
            return self.submit(job.startup, owner, material=material, job_id=new_job_id, on_ambiguous=on_ambiguous)
        except QueueUnavailable:
            self.store.release_retry(job_id)
            raise

    def recent(self, limit: int, requester: Requester, *, before: Job | None = None) -> list[Job]:
        """The newest jobs `requester` may read; `before` is a job they may read (`get`)."""
        return self.store.recent_jobs(limit, before=before, owner=self._owner_filter(requester))

    def search_reports(
        self, query: str, requester: Requester, *, offset: int = 0, limit: int = 20
    ) -> tuple[list[Job], int]:
        """The finished reports `requester` may read whose name contains `query`, and their count."""
        return self.store.search_reports(query, offset=offset, limit=limit, owner=self._owner_filter(requester))
