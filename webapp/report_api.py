"""The JSON API of a finished report: its Markdown and its key facts as data (`worker.facts`), for
scripts that read reports rather than follow jobs (`/status` is for those). Who may read a report
is what `/status` says (`JobService.get`, PRIVATE_REPORTS); errors are JSON (`webapp.errors`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from flask_login import current_user

from webapp.errors import error_response
from webapp.extensions import jobs
from worker.facts import load_facts
from worker.models import Job, JobState

bp = Blueprint("report_api", __name__)


def report_body(job: Job) -> dict[str, Any]:
    """A finished report as the API returns it (README, *JSON API*)."""
    facts = load_facts(job.facts)
    website = next((fact.value for fact in facts or () if fact.key == "website"), None)
    unsupported = job.figures_unsupported or 0
    return {
        "id": job.id,
        "startup": job.startup,
        "state": job.state,
        "finished_at": job.finished_at.isoformat().replace("+00:00", "Z") if job.finished_at else None,
        "provider": job.provider,
        "company_id": job.company_id,
        # The website the report is about (its facts'), else the one the analyst gave.
        "website": website or job.website,
        "cost_usd": round(job.cost_usd, 6),
        "figures": None
        if job.figures_checked is None
        else {
            "checked": job.figures_checked,
            "supported": job.figures_checked - unsupported,
            "unsupported": unsupported,
        },
        "markdown": job.report_md,
        # None for a report stored before facts were kept.
        "facts": None if facts is None else [fact.to_dict() for fact in facts],
        "report_url": url_for("reports.show", job_id=job.id),
        "status_url": url_for("api.status", job_id=job.id),
    }


@bp.get("/api/reports/<job_id>")
def report(job_id: str) -> tuple[Response, int]:
    """The finished report; 404 for one the user may not read, 409 while it is not finished."""
    job = jobs().get(job_id, current_user)
    if job is None:
        return error_response(404, f"No report with id {job_id!r}.")
    if job.state != JobState.SUCCESS:
        status_url = url_for("api.status", job_id=job.id)
        return error_response(
            409,
            f"The report is not finished (state {job.state}); follow the job at {status_url}.",
            state=job.state,
            status_url=status_url,
        )
    return jsonify(report_body(job)), 200
