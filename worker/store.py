"""Durable job records: one SQL row per job, one per finished pipeline step.

Redis keeps Celery's task states only for `RESULT_EXPIRES` and loses them when it is wiped; these
rows are what the product trusts. A job's row is written before its task is queued and finished by
the task, so a report never exists only in Redis.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from worker.database import create_database_engine
from worker.facts import Fact, dump_facts
from worker.models import (
    FINISHED_STATES,
    LIVE_STATES,
    QUEUED_STATES,
    Job,
    JobDocument,
    JobResearch,
    JobState,
    JobStep,
    TaskDelivery,
    UTCDateTime,
    startup_key,
    utcnow,
)
from worker.pipeline import Checkpoint, Progress
from worker.research import Document, Material, Research
from worker.sources.fact_check import FigureCounts

logger = logging.getLogger(__name__)

# The statements of every status poll and submission, built once: building a statement cost as
# much as running it. Each runs on a plain connection and its rows become `Job`s that no session
# holds: an ORM session's load and flush were most of a submission's CPU (bench/RESULTS.md, "Issue
# 14's latency figures"), and no caller writes such a `Job` back (writes go by id).
_JOBS = Job.__table__
_JOB_BY_ID = select(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
_INSERT_JOB = insert(_JOBS)
_INSERT_DOCUMENTS = insert(JobDocument.__table__)
_LIVE = _JOBS.c.state.in_(LIVE_STATES)
_COUNT_LIVE = select(func.count()).select_from(_JOBS).where(_LIVE)
_COUNT_LIVE_OF = _COUNT_LIVE.where(_JOBS.c.created_by == bindparam("owner"))
_LIVE_BY_KEY = select(_JOBS).where(_JOBS.c.startup_key == bindparam("key"), _LIVE)
_LIVE_BY_KEY_OF = _LIVE_BY_KEY.where(_JOBS.c.created_by == bindparam("owner"))
_BY_IDEMPOTENCY_KEY = select(_JOBS).where(
    _JOBS.c.created_by == bindparam("owner"), _JOBS.c.idempotency_key == bindparam("key")
)

# A worker begins one of a job's tasks (JobStore.mark_started): the job's row changes only while
# the job is live, except its count of deliveries, which counts every one.
_UNFINISHED = _JOBS.c.state.not_in(FINISHED_STATES)
_NOW = bindparam("now", type_=UTCDateTime())
_ATTEMPT = bindparam("attempt", type_=Integer())
_JOB_STARTED = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job"))
    .values(
        deliveries=func.coalesce(_JOBS.c.deliveries, 0) + 1,
        updated_at=_NOW,
        state=case((_JOBS.c.state.in_((JobState.PENDING, JobState.RETRY)), JobState.STARTED), else_=_JOBS.c.state),
        worker=case((_UNFINISHED, bindparam("worker")), else_=_JOBS.c.worker),
        # The most attempts any of its tasks took.
        attempts=case(
            (_UNFINISHED & (func.coalesce(_JOBS.c.attempts, 0) < _ATTEMPT), _ATTEMPT), else_=_JOBS.c.attempts
        ),
        retry_at=case((_UNFINISHED, null()), else_=_JOBS.c.retry_at),
        started_at=case((_UNFINISHED, func.coalesce(_JOBS.c.started_at, _NOW)), else_=_JOBS.c.started_at),
    )
)
_DELIVERIES = TaskDelivery.__table__
_THIS_DELIVERY = (_DELIVERIES.c.job_id == bindparam("job")) & (_DELIVERIES.c.task_key == bindparam("key"))
_DELIVERY_COUNTED = update(_DELIVERIES).where(_THIS_DELIVERY).values(count=_DELIVERIES.c.count + 1)
_INSERT_DELIVERY = insert(_DELIVERIES)
_DELIVERY_COUNT = select(_DELIVERIES.c.count).where(_THIS_DELIVERY)
_STEP_MODELS = (
    select(JobStep.key, JobStep.provider, JobStep.model)
    .where(JobStep.job_id == bindparam("job_id"))
    .order_by(JobStep.created_at, JobStep.key)
)


class NewJob(TypedDict, total=False):
    """What a new job may be given besides its startup and owner (`JobStore.create_job`)."""

    idempotency_key: str | None
    material: Material | None
    job_id: str | None
    on_ambiguous: str | None
    trigger: str | None
    previous_job_id: str | None
    max_cost_usd: float | None


def _job_row(startup: str, created_by: str | None = None, **new: Unpack[NewJob]) -> dict[str, object]:
    """A new job's row as `JobStore.create_job` inserts it: always the same columns, so that the
    insert is compiled once (and `JobStore.warm_up` compiles it)."""
    material = new.get("material") or Material()
    return {
        "id": new.get("job_id") or str(uuid.uuid4()),
        "startup": startup,
        "startup_key": startup_key(startup),
        "created_by": created_by,
        "idempotency_key": new.get("idempotency_key"),
        "state": JobState.PENDING,
        "created_at": utcnow(),
        "website": material.website,
        "notes": material.notes,
        "on_ambiguous": new.get("on_ambiguous"),
        "trigger": new.get("trigger"),
        "previous_job_id": new.get("previous_job_id"),
        "max_cost_usd": new.get("max_cost_usd"),
    }


class IdempotencyKeyTaken(Exception):
    """Another request of the same user with the same Idempotency-Key stored its job first."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"Idempotency-Key already used by job {job.id}")
        self.job = job


class JobStore:
    """Every read and write of job rows goes through here."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_database_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def warm_up(self) -> None:
        """Open a connection and compile the queries a submission and a status read run, so that
        the first request does not pay for it (see `JobService.warm_up`)."""
        nobody = ""
        self.get_job(nobody)
        self.step_models(nobody)  # a finished job's status lists them
        self.count_live(nobody)
        self.find_live(nobody)
        self.find_by_idempotency_key(nobody, nobody)
        with self.engine.connect() as connection:  # the insert too, rolled back: nothing is stored
            connection.execute(_INSERT_JOB, _job_row(nobody))
            connection.rollback()

    # Writes by the web app.

    def create_job(self, startup: str, created_by: str | None = None, **new: Unpack[NewJob]) -> Job:
        values = _job_row(startup, created_by, **new)
        material = new.get("material") or Material()
        documents = [
            {"job_id": values["id"], "filename": d.filename[:255], "text": d.text or None, "data": d.pdf}
            for d in material.documents
        ]
        try:
            with self.engine.begin() as connection:
                inserted = connection.execute(_INSERT_JOB, values)
                if documents:
                    connection.execute(_INSERT_DOCUMENTS, documents)
        except IntegrityError:
            # Two requests with one key both looked it up before either stored its job: the unique
            # index on (created_by, idempotency_key) lets one in, and the other answers with its job.
            winner = None
            if created_by and new.get("idempotency_key"):
                winner = self.find_by_idempotency_key(created_by, new["idempotency_key"])
            if winner is None:
                raise
            raise IdempotencyKeyTaken(winner) from None
        # The row as stored, the columns' defaults included.
        return Job(**inserted.last_inserted_params())

    def load_material(self, job_id: str) -> Material:
        with self.session() as session:
            job = session.get(Job, job_id)
            if job is None:
                return Material()
            query = select(JobDocument).where(JobDocument.job_id == job_id).order_by(JobDocument.id)
            documents = tuple(Document(d.filename, d.text or "", d.data) for d in session.scalars(query))
            return Material(website=job.website, notes=job.notes, documents=documents)

    def save_research(self, job_id: str, research: Research) -> None:
        with self.session() as session:
            session.merge(JobResearch(job_id=job_id, data=research.to_json()))

    def load_research(self, job_id: str) -> Research | None:
        with self.session() as session:
            row = session.get(JobResearch, job_id)
            return Research.from_json(row.data) if row else None

    def delete_job(self, job_id: str) -> None:
        with self.session() as session:
            session.execute(delete(JobStep).where(JobStep.job_id == job_id))
            session.execute(delete(TaskDelivery).where(TaskDelivery.job_id == job_id))
            session.execute(delete(JobDocument).where(JobDocument.job_id == job_id))
            session.execute(delete(JobResearch).where(JobResearch.job_id == job_id))
            session.execute(delete(Job).where(Job.id == job_id))

    # Reads.

    def get_job(self, job_id: str) -> Job | None:
        """The job's row as a `Job` that no session holds, read on a plain connection: the ORM
        session's load path was a third of a status read's CPU (bench/RESULTS.md, "Issue 14's
        latency figures"), and no caller writes the object back (writes go by id)."""
        return self._one_job(_JOB_BY_ID, job_id=job_id)

    def _one_job(self, query: Select[Any], **params: object) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(query, params).first()
        return None if row is None else Job(**row._mapping)

    def count_live(self, created_by: str | None = None) -> int:
        """Jobs queued or running: `created_by`'s, or everyone's."""
        with self.engine.connect() as connection:
            if created_by is None:
                return connection.scalar(_COUNT_LIVE) or 0
            return connection.scalar(_COUNT_LIVE_OF, {"owner": created_by}) or 0

    def recent_jobs(self, limit: int = 20, *, before: Job | None = None, owner: str | None = None) -> list[Job]:
        """The newest jobs first (only `owner`'s, if given); with `before`, the ones that come after
        that job in this order (keyset pagination: a page never repeats or skips a job as new ones
        arrive)."""
        query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
        if owner is not None:
            query = query.where(Job.created_by == owner)
        if before is not None:
            query = query.where(
                or_(
                    Job.created_at < before.created_at,
                    and_(Job.created_at == before.created_at, Job.id > before.id),
                )
            )
        with self.session() as session:
            return list(session.scalars(query))

    def search_reports(
        self, query: str = "", *, offset: int = 0, limit: int = 20, owner: str | None = None
    ) -> tuple[list[Job], int]:
        """Finished reports whose name contains `query` (any case), newest first, and their count;
        only `owner`'s, if given."""
        condition = Job.state == JobState.SUCCESS
        if owner is not None:
            condition = condition & (Job.created_by == owner)
        key = startup_key(query)
        if key:
            condition = condition & Job.startup_key.contains(key, autoescape=True)
        with self.session() as session:
            total = session.scalar(select(func.count()).select_from(Job).where(condition)) or 0
            newest_first = select(Job).where(condition).order_by(Job.finished_at.desc(), Job.id)
            rows = session.scalars(newest_first.offset(offset).limit(limit))
            return list(rows), total

    def load_checkpoints(self, job_id: str) -> dict[str, Checkpoint]:
        with self.session() as session:
            rows = session.scalars(select(JobStep).where(JobStep.job_id == job_id))
            return {
                row.key: Checkpoint(
                    key=row.key,
                    text=row.text,
                    provider=row.provider,
                    model=row.model,
                    input_tokens=row.input_tokens,
                    output_tokens=row.output_tokens,
                    citations_removed=row.citations_removed or 0,
                    paid=row.paid is not False,
                    unchanged_since=row.unchanged_since,
                )
                for row in rows
            }

    def step_models(self, job_id: str) -> list[tuple[str, str | None, str | None]]:
        """(step, provider, model) of each finished step, in the order they were written: what a
        finished job's status lists, without the steps' text (on a plain connection, as `get_job`)."""
        with self.engine.connect() as connection:
            rows = connection.execute(_STEP_MODELS, {"job_id": job_id})
            return [(key, provider, model) for key, provider, model in rows]

    def steps(self, job_id: str) -> list[JobStep]:
        """The finished steps of a job, in the order they were written."""
        with self.session() as session:
            query = select(JobStep).where(JobStep.job_id == job_id).order_by(JobStep.created_at, JobStep.key)
            return list(session.scalars(query))

    # Writes by the worker. Each is one short transaction, so a crash loses at most one step.

    def _update(self, job_id: str, *conditions: ColumnElement[bool], **values: object) -> bool:
        """Update one job's row where `conditions` hold; True if it was updated. The conditions
        make each transition safe against a concurrent one (a cancel, a late duplicate)."""
        query = update(_JOBS).where(_JOBS.c.id == job_id, *conditions).values(updated_at=utcnow(), **values)
        with self.engine.begin() as connection:  # no ORM session: a third of the CPU (bench/RESULTS.md)
            return connection.execute(query).rowcount == 1

    def touch(self, job_id: str) -> None:
        self._update(job_id)

    def mark_started(self, job_id: str, *, worker: str, attempt: int, task_key: str = "") -> int:
        """Record that a worker began one of the job's tasks; returns how many times a worker has
        begun that task (this time included), retries and re-deliveries after a crash alike.

        Each row changes in one UPDATE that reads its old values, so two deliveries at once cannot
        both count from the same number; the job's row, updated first, holds the second until the
        first commits (SQLite's write lock, PostgreSQL's row lock)."""
        delivery = {"job": job_id, "key": task_key}
        with self.engine.begin() as connection:
            params = {"job": job_id, "worker": worker, "attempt": attempt, "now": utcnow()}
            if connection.execute(_JOB_STARTED, params).rowcount == 0:
                return 0
            if connection.execute(_DELIVERY_COUNTED, delivery).rowcount == 0:
                connection.execute(_INSERT_DELIVERY, {"job_id": job_id, "task_key": task_key, "count": 1})
                return 1
            return connection.scalar(_DELIVERY_COUNT, delivery) or 0

    def mark_progress(self, job_id: str, progress: Progress) -> bool:
        """Record progress; False when the job has finished meanwhile (a user cancelled it)."""
        return self._update(
            job_id,
            Job.state.not_in(FINISHED_STATES),
            state=JobState.PROGRESS,
            # Batches of one report run at once: the step shown never goes back.
            progress_step=case((Job.progress_step > progress.step, Job.progress_step), else_=progress.step),
            progress_total=progress.total,
            progress_label=progress.label[:100],
        )

    def mark_cancelled(self, job_id: str, *, by: str) -> bool:
        """Cancel a live job; False if it had already finished. A partial report being continued
        (`continue_partial`) goes back to its partial report, which is readable as before: a
        cancelled job shows no report, and its partial report is what the analyst paid for."""
        stopped_continuing = self._update(
            job_id,
            Job.state.in_(LIVE_STATES),
            Job.partial.is_(True),
            Job.report_md.is_not(None),
            state=JobState.SUCCESS,
            cancelled_by=by,
            progress_label="Continuation cancelled",
            retry_at=None,
            finished_at=utcnow(),
        )
        return stopped_continuing or self._update(
            job_id,
            Job.state.in_(LIVE_STATES),
            state=JobState.REVOKED,
            cancelled_by=by,
            error=f"Cancelled by {by}.",
            retry_at=None,
            finished_at=utcnow(),
        )

    def mark_needs_input(self, job_id: str, candidates: list[dict[str, str]]) -> bool:
        """Stop a queued or running job to ask which company its name means."""
        return self._update(
            job_id,
            Job.state.in_(QUEUED_STATES),
            state=JobState.NEEDS_INPUT,
            candidates=json.dumps(candidates),
            asked_at=utcnow(),
            progress_label="Which company? Choose one",
            retry_at=None,
        )

    def choose_company(self, job_id: str, website: str) -> bool:
        """The analyst's answer: the job is queued again with the company's website as its own."""
        return self._update(
            job_id,
            Job.state == JobState.NEEDS_INPUT,
            state=JobState.PENDING,
            website=website,
            candidates=None,
            progress_label="",
        )

    def expire_questions(self, asked_before: datetime) -> list[str]:
        """Cancel the jobs that have asked which company since before `asked_before`, unanswered."""
        with self.session() as session:
            query = select(Job.id).where(Job.state == JobState.NEEDS_INPUT, Job.asked_at < asked_before)
            job_ids = list(session.scalars(query))
        error = (
            "Cancelled: nobody chose which company was meant. Submit the report again with the "
            "company's website to say which one."
        )
        finished = {"state": JobState.REVOKED, "error": error, "finished_at": utcnow()}
        return [job_id for job_id in job_ids if self._update(job_id, Job.state == JobState.NEEDS_INPUT, **finished)]

    def find_live(self, startup: str, *, owner: str | None = None) -> Job | None:
        """The newest queued or running job for the same startup (any case), if there is one; only
        `owner`'s, if given."""
        params = {"key": startup_key(startup), "owner": owner}
        # The newest is picked here, not by ORDER BY … LIMIT 1: SQLite would walk the owner's jobs
        # newest first (ix_jobs_created_by_created_at) to the first match, all of them for a startup
        # not being written, which is what a submission usually asks about.
        with self.engine.connect() as connection:
            rows = connection.execute(_LIVE_BY_KEY if owner is None else _LIVE_BY_KEY_OF, params).all()
        newest = max(rows, key=lambda row: row.created_at, default=None)
        return None if newest is None else Job(**newest._mapping)

    def live_startup_keys(self, keys: Collection[str], *, owner: str | None = None) -> set[str]:
        """Which of the startup keys (`startup_key`) have a queued or running job, in one query;
        only `owner`'s jobs count, if given (as `find_live`)."""
        if not keys:
            return set()
        query = select(Job.startup_key).where(Job.startup_key.in_(set(keys)), Job.state.in_(LIVE_STATES)).distinct()
        if owner is not None:
            query = query.where(Job.created_by == owner)
        with self.session() as session:
            return set(session.scalars(query))

    def find_by_idempotency_key(self, created_by: str, key: str) -> Job | None:
        return self._one_job(_BY_IDEMPOTENCY_KEY, owner=created_by, key=key)

    def save_checkpoint(self, job_id: str, checkpoint: Checkpoint, cost_usd: float | None = None) -> None:
        """Store a finished step and add what it cost to the job's totals, in one transaction."""
        with self.session() as session:
            session.merge(
                JobStep(
                    job_id=job_id,
                    key=checkpoint.key,
                    text=checkpoint.text,
                    provider=checkpoint.provider,
                    model=checkpoint.model,
                    input_tokens=checkpoint.input_tokens,
                    output_tokens=checkpoint.output_tokens,
                    cost_usd=cost_usd,
                    citations_removed=checkpoint.citations_removed,
                    paid=checkpoint.paid,
                    unchanged_since=checkpoint.unchanged_since,
                )
            )
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    calls=Job.calls + (1 if checkpoint.paid else 0),
                    retries=Job.retries + checkpoint.failed_attempts,
                    input_tokens=Job.input_tokens + checkpoint.input_tokens,
                    output_tokens=Job.output_tokens + checkpoint.output_tokens,
                    cost_usd=Job.cost_usd + (cost_usd or 0.0),
                    unpriced_calls=Job.unpriced_calls + (1 if cost_usd is None and checkpoint.paid else 0),
                    updated_at=utcnow(),
                )
            )

    def add_provider_down(self, job_id: str, entry: str) -> None:
        """Record "<provider>:<kind>", replacing what was recorded for that provider before."""
        provider = entry.partition(":")[0]
        with self.session() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is not None:
                others = [e for e in job.down_providers if e.partition(":")[0] != provider]
                job.providers_down = ",".join([*others, entry])[:200]

    def clear_providers_down(self, job_id: str) -> None:
        self._update(job_id, providers_down=None)

    def count_call_sent(self, job_id: str) -> bool:
        """Count one more provider attempt about to be sent for the job; False (and nothing
        counted) when the job has finished meanwhile (cancelled, or failed by another task), so
        that the attempt is not sent at all."""
        return self._update(job_id, Job.state.not_in(FINISHED_STATES), calls_sent=func.coalesce(Job.calls_sent, 0) + 1)

    def add_failed_attempts(self, job_id: str, count: int) -> None:
        """Count provider attempts that failed without producing a step (the job is retried or fails)."""
        if count:
            self._update(job_id, retries=Job.retries + count)

    def mark_retry(self, job_id: str, *, error: str, retry_at: datetime) -> None:
        self._update(job_id, Job.state.not_in(FINISHED_STATES), state=JobState.RETRY, error=error, retry_at=retry_at)

    def mark_succeeded(
        self,
        job_id: str,
        *,
        report_md: str,
        provider: str,
        citations_removed: int = 0,
        figures: FigureCounts | None = None,
        partial: bool = False,
        facts: list[Fact] | None = None,
    ) -> bool:
        """Store the report (and its key facts), unless the job was cancelled meanwhile; True if it
        was stored. The counts are the report's own (set, never added to), so a report stored twice
        counts once. `partial`: it stopped at its cost cap with steps unwritten (a whole report
        clears it)."""
        return self._update(
            job_id,
            Job.state.not_in(FINISHED_STATES),
            state=JobState.SUCCESS,
            partial=True if partial else None,
            citations_removed=citations_removed,
            figures_checked=figures.checked if figures else None,
            figures_unsupported=figures.unsupported if figures else None,
            report_md=report_md,
            facts=dump_facts(facts) if facts is not None else None,
            provider=provider[:200],
            error=None,
            retry_at=None,
            finished_at=utcnow(),
        )

    def continue_partial(self, job_id: str, max_cost_usd: float) -> bool:
        """Queue a partial report again under a higher cap; False unless it is (still) a partial
        report spending less than that: a success, or a continuation that failed (a provider
        down), which keeps its partial report. That report stays stored until the whole one
        replaces it; its steps stay checkpointed, so none is paid for twice; its tasks' delivery
        counts start again, since the same tasks run again."""
        with self.session() as session:
            continued = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state.in_((JobState.SUCCESS, JobState.FAILURE)),
                    Job.partial.is_(True),
                    Job.cancelled_by.is_(None),  # its tasks' ids are revoked (`mark_cancelled`)
                    Job.cost_usd < max_cost_usd,
                )
                .values(
                    state=JobState.PENDING,
                    max_cost_usd=max_cost_usd,
                    finished_at=None,
                    error=None,
                    progress_label="Continuing",
                    updated_at=utcnow(),
                )
            )
            if continued.rowcount != 1:
                return False
            session.execute(delete(TaskDelivery).where(TaskDelivery.job_id == job_id))
            return True

    def undo_continue(self, job: Job) -> None:
        """Put a continued job back as it was (`job`, read before): its task could not be queued."""
        self._update(
            job.id,
            Job.state == JobState.PENDING,
            state=job.state,
            max_cost_usd=job.max_cost_usd,
            finished_at=job.finished_at,
            error=job.error,
            progress_label=job.progress_label,
        )

    def claim_retry(self, job_id: str, new_job_id: str) -> bool:
        """Take the right to retry a failed job as `new_job_id` (made up by the caller before the
        new job exists). Only one caller ever gets it, so a double click or a second tab cannot pay
        for the same retry twice."""
        return self._update(job_id, Job.state == JobState.FAILURE, Job.retried_as.is_(None), retried_as=new_job_id)

    def release_retry(self, job_id: str) -> None:
        """Give a claimed retry back: its new job could not be queued."""
        self._update(job_id, retried_as=None)

    def mark_failed(self, job_id: str, *, error: str) -> None:
        """Fail a job unless it has already finished (a late duplicate must not undo a success)."""
        finished = {"state": JobState.FAILURE, "error": error, "retry_at": None, "finished_at": utcnow()}
        self._update(job_id, Job.state.not_in(FINISHED_STATES), **finished)
