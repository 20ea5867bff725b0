"""Every table of Startup Reports, declared in one place: the jobs and what their tasks store,
the companies that reports are versions of (with their watches and what watchers were told), and
the analysts' accounts. The migrations (`migrations/`) and every process import this module,
so which tables exist never depends on what a process happened to import first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

MAX_STARTUP_CHARS = 200
MAX_WEBSITE_CHARS = 2000


class JobState(StrEnum):
    """A job's state, stored as its name. Celery's names, so a job and its task agree."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"  # cancelled by a user: Celery's own name for it
    # Not Celery's: the job stopped before any model call to ask which company the name means
    # (`Job.candidates`); it has no task until the analyst chooses.
    NEEDS_INPUT = "NEEDS_INPUT"


FINISHED_STATES = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.REVOKED})
LIVE_STATES = frozenset({JobState.PENDING, JobState.STARTED, JobState.PROGRESS, JobState.RETRY, JobState.NEEDS_INPUT})
#: The live states in which the job has a task message in Redis: queued, running, or due to retry.
QUEUED_STATES = LIVE_STATES - {JobState.NEEDS_INPUT}


def startup_key(name: str) -> str:
    """How two names are compared: case-insensitively, with runs of spaces folded."""
    return " ".join(name.casefold().split())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    # One job per user and Idempotency-Key: of two requests racing with one key, one inserts and the
    # other reads its job (JobStore.create_job).
    # A user's live jobs (counted on every submission) and newest jobs are found by index, however
    # many jobs the user asked for before (revision 0010).
    __table_args__ = (
        Index("uq_jobs_created_by_idempotency_key", "created_by", "idempotency_key", unique=True),
        Index("ix_jobs_created_by_state", "created_by", "state"),
        Index("ix_jobs_created_by_created_at", "created_by", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    startup: Mapped[str] = mapped_column(String(MAX_STARTUP_CHARS * 4))
    # The name case-folded, for searching and for spotting the same startup twice.
    startup_key: Mapped[str] = mapped_column(String(MAX_STARTUP_CHARS * 4), index=True, default="")
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_label: Mapped[str] = mapped_column(String(100), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    report_md: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider: Mapped[str | None] = mapped_column(String(200), nullable=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    # Accounting: failed provider attempts (retried or handed on), tokens, estimated cost.
    retries: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    unpriced_calls: Mapped[int] = mapped_column(Integer, default=0)
    # Provider attempts sent, each counted before it goes out: once the job has finished, those
    # beyond `calls` + `retries` were in flight when a worker died (paid, but never answered here).
    calls_sent: Mapped[int | None] = mapped_column(Integer, nullable=True, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The user who asked for it, and who cancelled it, if anyone did.
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A client's Idempotency-Key: the same key from the same user returns the same job.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    # Times a worker began this job, retries and re-deliveries after a crash alike.
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    # Set when a failed job is retried: the id of the new job.
    retried_as: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Providers of a fallback chain found down by one of the job's tasks ("openai:transient,…"):
    # the job's later tasks skip them.
    providers_down: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # What the analyst gave with the job (documents are in `job_documents`), and how many of the
    # model's citations pointed at nothing the pipeline read and were removed from the report.
    website: Mapped[str | None] = mapped_column(String(MAX_WEBSITE_CHARS), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    citations_removed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What to do when several companies share the name: "ask" (NEEDS_INPUT), "best" or "fail";
    # and, while the job asks, the companies it found (JSON: name, website, snippet) and since when.
    on_ambiguous: Mapped[str | None] = mapped_column(String(8), nullable=True)
    candidates: Mapped[str | None] = mapped_column(Text, nullable=True)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The report's figures looked up in the sources their sentences cite, and those not found
    # there (marked in the report); None when the report had no sources to look them up in.
    figures_checked: Mapped[int | None] = mapped_column(Integer, nullable=True)
    figures_unsupported: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The company the finished report is a version of (set when it succeeds), the version a re-run
    # builds on (its unchanged sections are kept without a model call), and "watch" for a re-run
    # queued by a watch's schedule rather than by an analyst.
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), nullable=True, index=True)
    previous_job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    trigger: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The cost cap the report runs under (None: no cap); whether it was finished with what it had
    # because its next call would have passed the cap (*Continue* with a higher cap resumes it);
    # and its key facts as data (JSON, `worker.facts`), set when it succeeds.
    max_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    partial: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    facts: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def candidate_list(self) -> list[dict[str, str]]:
        """The companies the job asks the analyst to choose between (empty unless NEEDS_INPUT)."""
        return json.loads(self.candidates) if self.candidates else []

    @property
    def down_providers(self) -> list[str]:
        """`providers_down` as a list of "<provider>:<transient|fatal>" entries."""
        return [entry for entry in (self.providers_down or "").split(",") if entry]

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def unanswered_calls(self) -> int:
        """Attempts sent whose outcome no process lived to record: a worker killed mid-call.
        While the job runs, these include the calls in flight."""
        return max(0, (self.calls_sent or 0) - self.calls - self.retries)

    @property
    def unanswered_cost_usd(self) -> float:
        """What the unanswered calls likely cost: the provider bills them all the same. Estimated
        at the job's average priced call, as their tokens were never reported."""
        priced = self.calls - self.unpriced_calls
        return self.unanswered_calls * self.cost_usd / priced if priced > 0 else 0.0

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Company(Base):
    """A company as reports know it: a name and, once a report fixed it, its website. Every
    finished report is a version of one; `key` says which (the website's registrable domain when
    known, else the name case-folded), so two names for one website are one company.

    The re-run schedule lives here, not in Celery beat's own schedule: beat's periodic task only
    asks which companies are due (`next_run_at`), so adding a watch needs no restart, and moving
    `next_run_at` on by compare-and-set queues at most one re-run per period whatever the number
    of beats."""

    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(MAX_STARTUP_CHARS * 4), unique=True)
    name: Mapped[str] = mapped_column(String(MAX_STARTUP_CHARS * 4))
    website: Mapped[str | None] = mapped_column(String(MAX_WEBSITE_CHARS), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The shortest cadence among the company's watches (None when nobody watches it), and when
    # the next re-run is due.
    every_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class Watch(Base):
    """A user following a company: a re-run every `every_seconds` (0: off, kept so the watchlist
    remembers it), and a message when a new version changed materially."""

    __tablename__ = "watches"
    __table_args__ = (Index("uq_watches_user_company", "user_id", "company_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    every_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Change(Base):
    """What a new version of a company changed against the one before (`summary`, JSON), and
    whether that is material, which is what watchers are told about."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    previous_job_id: Mapped[str] = mapped_column(String(36))
    material: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Notification(Base):
    """A material change shown to one watcher on the dashboard until they read it."""

    __tablename__ = "notifications"
    __table_args__ = (Index("uq_notifications_user_change", "user_id", "change_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Delivery(Base):
    """One message about a change on its way to one place: an e-mail to a watcher, a webhook of a
    watcher's, or the deployment's webhook (`user_id` None). Every attempt updates the row, which
    the company page shows."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))  # "email" or "webhook"
    target: Mapped[str] = mapped_column(String(MAX_WEBSITE_CHARS))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobStep(Base):
    """The stored output of one finished pipeline step: the checkpoint a retry resumes from."""

    __tablename__ = "job_steps"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    citations_removed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # False for a step written without a provider call ("No public information found").
    paid: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Set on a re-run's step kept from the version before (its sources unchanged): when its text
    # was written, which the report shows as "unchanged since".
    unchanged_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PageCacheEntry(Base):
    """A page as last fetched: its validators (ETag, Last-Modified) for a conditional request, a
    hash of its body, and the page as extracted (JSON of `FetchedPage`), so that a page that did
    not change is neither downloaded nor extracted again (`worker.sources.page_cache`)."""

    __tablename__ = "page_cache"

    # SHA-256 of the address as requested: addresses can be longer than an index allows.
    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    page: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobDocument(Base):
    """A document the analyst uploaded with a job: the PDF as it came, which the worker reads
    (rows stored before revision 0004 hold the text the web app read instead)."""

    __tablename__ = "job_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class JobResearch(Base):
    """The sources a job's report rests on, gathered once before its first step (JSON)."""

    __tablename__ = "job_research"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[str] = mapped_column(Text)


class TaskDelivery(Base):
    """How many times a worker has begun one of a job's tasks (a step, or a batch of sections).
    A task that takes its worker process down every time is given up after a bounded number."""

    __tablename__ = "task_deliveries"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    task_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Part of every log-in session's user id: log-out and a password change bump it, which ends
    # every session signed with the old one (webapp.accounts.Analyst.get_id).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Where this user is told about material changes of the companies they watch (account page):
    # an address for e-mail, a URL for a webhook, and "slack" for a Slack-compatible body.
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(MAX_WEBSITE_CHARS), nullable=True)
    webhook_format: Mapped[str | None] = mapped_column(String(8), nullable=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so the owner can tell tokens apart without the secret.
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
