"""What a job has spent against its cost cap, as the API, the card and the report page show it."""

from __future__ import annotations

from typing import Any

from flask import url_for

from webapp.extensions import jobs
from worker.models import Job, JobState
from worker.pipeline import step_labels, step_title


def unwritten_steps(job: Job) -> list[str]:
    """The titles of the steps a partial report lacks, in report order."""
    written = {step.key for step in jobs().store.steps(job.id)}
    return [step_title(key) for key, _ in step_labels() if key not in written]


def spend_of(job: Job) -> dict[str, Any]:
    """`cost_usd` against `max_cost_usd` (None: no cap), and for a report that stopped at its cap
    (`partial`), the steps it lacks and where to continue it."""
    data: dict[str, Any] = {
        "cost_usd": round(job.cost_usd or 0.0, 6),
        "max_cost_usd": job.max_cost_usd,
        "partial": bool(job.partial),
    }
    if job.partial and job.state in (JobState.SUCCESS, JobState.FAILURE):  # a continuation may fail
        data["unwritten"] = unwritten_steps(job)
        if not job.cancelled_by:  # a cancelled continuation cannot run again (`continue_report`)
            data["continue_url"] = url_for("continuing.continue_api", job_id=job.id)
    return data
