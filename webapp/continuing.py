"""*Continue*: a report that stopped at its cost cap resumes from its checkpoints under a higher
cap: JSON for scripts (`POST /api/jobs/<id>/continue {"max_cost_usd": 2.0}`) and the form on the
partial report's card and page (`POST /jobs/<id>/continue`)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from htmx_flask import request as htmx_request

from webapp.api import job_summary
from webapp.dashboard import ACTION_REFUSALS, refusal, refused_action
from webapp.errors import error_response
from webapp.estimates import check_continuing
from webapp.extensions import jobs
from webapp.job_views import card_for
from webapp.spend import unwritten_steps
from webapp.validation import ValidationError, validate_max_cost
from worker.models import Job

bp = Blueprint("continuing", __name__)


@bp.app_context_processor
def spend_helpers() -> dict[str, object]:
    """What `jobs/_spend.html` asks, wherever it is included (the card, the report page)."""
    return {
        "may_act": lambda job: jobs().may_act(job, current_user),
        "unwritten_steps": unwritten_steps,
        "max_cost_limit": current_app.extensions["settings"].max_cost_per_report_usd,
    }


def continue_with(job_id: str, value: object) -> Job:
    """Continue the job under the cap `value` asks for, within the monthly budget; raises what
    `ACTION_REFUSALS` lists."""
    new_cap = validate_max_cost(value, current_app.extensions["settings"].max_cost_per_report_usd)
    if new_cap is None:
        raise ValidationError('Give the new cap: "max_cost_usd", a number of US dollars above what it has spent.')
    check_continuing(job_id, new_cap)
    return jobs().continue_report(job_id, new_cap, current_user)


@bp.post("/api/jobs/<job_id>/continue")
def continue_api(job_id: str) -> tuple[Response, int]:
    """Resume a partial report (its owner or an admin); answers with the job as `/status` does."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, Mapping):
        return error_response(400, 'Send a JSON object with the new cap, e.g. {"max_cost_usd": 2.0}.')
    try:
        job = continue_with(job_id, payload.get("max_cost_usd"))
    except ACTION_REFUSALS as exc:
        return error_response(*reversed(refusal(exc)))
    return jsonify(job_summary(job)), 202


@bp.post("/jobs/<job_id>/continue")
def continue_form(job_id: str) -> Response | tuple[str, int]:
    """The *Continue* form of a partial report's card or page."""
    try:
        job = continue_with(job_id, request.form.get("max_cost_usd"))
    except ACTION_REFUSALS as exc:
        return refused_action(job_id, *refusal(exc))
    if htmx_request.htmx:
        return render_template("jobs/_card.html", card=card_for(job)), 200
    flash(f"Continuing the report on {job.startup}, under a cap of ${job.max_cost_usd:g}.")
    return redirect(url_for("dashboard.index"), 303)
