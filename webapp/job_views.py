"""How a job looks on a card: its state in words, its progress, how long it has taken, and
whether the user looking at it may cancel or retry it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_login import current_user

from webapp.extensions import jobs
from worker.models import LIVE_STATES, Job, JobState, utcnow


def format_duration(seconds: float) -> str:
    """ "8 s", "2 min 05 s", "1 h 04 min": short, and stable in width while it counts up."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class JobCard:
    job: Job
    status: str
    tone: str
    percent: int
    elapsed: str
    live: bool
    # Cancel, Retry and the choice of company: only for those who may use them (the job's owner
    # and admins).
    actions: bool = False

    @property
    def polls(self) -> bool:
        """A live card refreshes itself, except one waiting for the analyst's answer, which would
        wipe a website being typed; the answer's own response swaps the card."""
        return self.live and self.job.state != JobState.NEEDS_INPUT


def card_for(job: Job) -> JobCard:
    """The card of `job` as the current user sees it."""
    max_retries = current_app.extensions["settings"].task_max_retries
    return job_card(job, max_retries=max_retries, actions=jobs().may_act(job, current_user))


def job_card(job: Job, *, max_retries: int, now: datetime | None = None, actions: bool = False) -> JobCard:
    now = now or utcnow()
    total = job.progress_total or 1
    percent = round(100 * job.progress_step / total) if job.progress_total else 0
    live = job.state in LIVE_STATES
    if job.state == JobState.PENDING:
        status, tone = "Queued", "queued"
    elif job.state == JobState.STARTED:
        status, tone = "Starting", "running"
    elif job.state == JobState.PROGRESS:
        status = f"Researching — step {job.progress_step} of {job.progress_total}: {job.progress_label}"
        tone = "running"
    elif job.state == JobState.RETRY:
        wait = max(0, round((job.retry_at - now).total_seconds())) if job.retry_at else 0
        retry_number = max(1, job.attempts)
        status = f"Retrying in {wait} s (retry {retry_number} of {max_retries})"
        tone = "retry"
    elif job.state == JobState.SUCCESS and job.partial:
        status, tone, percent = "Done, partial: it stopped at its cost cap", "done", 100
    elif job.state == JobState.SUCCESS:
        status, tone, percent = "Done", "done", 100
    elif job.state == JobState.NEEDS_INPUT:
        status = (
            f"Several companies are called {job.startup}. Which one is this report about? Nothing has been paid yet."
        )
        tone = "asking"
    elif job.state == JobState.REVOKED:
        status = f"Cancelled by {job.cancelled_by}" if job.cancelled_by else job.error or "Cancelled"
        tone = "cancelled"
    else:
        status, tone = f"Failed: {job.error or 'no reason was recorded'}", "failed"
    end = job.finished_at or now
    elapsed = format_duration((end - job.created_at).total_seconds())
    return JobCard(job=job, status=status, tone=tone, percent=percent, elapsed=elapsed, live=live, actions=actions)
