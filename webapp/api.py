"""The JSON API for scripts: submit a report, follow it, list recent jobs, check health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask_login import current_user

from webapp.errors import QUEUE_DOWN, error_response, too_many_live_jobs
from webapp.estimates import over_budget, over_budget_response
from webapp.extensions import jobs
from webapp.spend import spend_of
from webapp.validation import (
    ValidationError,
    parse_page_number,
    report_cap,
    uploaded_documents,
    validate_notes,
    validate_startup,
    validate_website,
)
from worker.jobs import (
    InvalidMaterial,
    NoSuchJob,
    NotAllowed,
    NotCancellable,
    QueueUnavailable,
    Upload,
    accept_documents,
)
from worker.models import Job, JobState
from worker.research import Material

bp = Blueprint("api", __name__)

DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_summary(job: Job) -> dict[str, Any]:
    """What every job response carries; `job_detail` adds the report and the retry plan."""
    data: dict[str, Any] = {
        "job_id": job.id,
        "startup": job.startup,
        "state": job.state,
        "progress": {"step": job.progress_step, "total": job.progress_total, "label": job.progress_label},
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "duration_seconds": job.duration_seconds,
        "attempts": job.attempts,
        "calls": job.calls,
        "provider": job.provider,
        "usage": {
            "calls": job.calls,
            "retries": job.retries,
            "input_tokens": job.input_tokens,
            "output_tokens": job.output_tokens,
            "cost_usd": round(job.cost_usd, 6),
            "calls_without_price": job.unpriced_calls,
            "calls_sent": job.calls_sent or 0,
            "calls_unanswered": job.unanswered_calls,
            "unanswered_cost_usd_estimate": round(job.unanswered_cost_usd, 6),
        },
        "finished": job.is_finished,
        "status_url": url_for("api.status", job_id=job.id),
        **spend_of(job),
    }
    if job.state == JobState.SUCCESS and job.citations_removed is not None:
        data["citations_removed"] = job.citations_removed
    if job.state == JobState.SUCCESS and job.figures_checked is not None:
        unsupported = job.figures_unsupported or 0
        data["figures"] = {
            "checked": job.figures_checked,
            "supported": job.figures_checked - unsupported,
            "unsupported": unsupported,
        }
    if job.error:
        data["error"] = job.error
    if job.cancelled_by:
        data["cancelled_by"] = job.cancelled_by
    if job.state == JobState.SUCCESS:
        data["report_url"] = url_for("reports.show", job_id=job.id)
        data["download_url"] = url_for("reports.download", job_id=job.id)
        if job.company_id is not None:  # a version of its company (worker.companies)
            data["company_url"] = url_for("company_api.company", company_id=job.company_id)
            data["changes_url"] = url_for("company_api.report_changes", job_id=job.id)
    if job.state == JobState.NEEDS_INPUT:
        data["candidates"] = job.candidate_list
        data["choose_url"] = url_for("dashboard.choose", job_id=job.id)
    return data


def job_detail(job: Job) -> dict[str, Any]:
    data = job_summary(job)
    if job.state == JobState.RETRY:
        data["retry"] = {
            "attempt": job.attempts,
            "max_retries": current_app.extensions["settings"].task_max_retries,
            "at": _iso(job.retry_at),
        }
    if job.state == JobState.SUCCESS:
        data["result"] = job.report_md
        data["sections"] = [
            {"step": key, "provider": provider, "model": model}
            for key, provider, model in jobs().store.step_models(job.id)
        ]
    return data


def _read_request() -> tuple[dict[str, Any], list[Upload]]:
    """The submission's fields and uploaded files: a JSON object, or a multipart form (the only
    way to send a document)."""
    if request.mimetype == "multipart/form-data":
        fields: dict[str, Any] = {key: request.form.get(key) for key in request.form}
        if "fresh" in fields:
            fields["fresh"] = fields["fresh"].strip().lower() in ("1", "true", "yes", "on")
        uploads = uploaded_documents(request.files)
        return fields, uploads
    if not request.is_json:
        raise ValidationError(
            'Send a JSON body with Content-Type: application/json, e.g. {"startup": "Acme"} '
            "(or a multipart form, to upload a document)."
        )
    try:
        payload = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting: not a startup's name either way
        payload = None
    if payload is None:
        raise ValidationError("The request body is not valid JSON.")
    if not isinstance(payload, dict):
        raise ValidationError('The JSON body must be an object, e.g. {"startup": "Acme"}.')
    return payload, []


#: What a submission may ask for when its name matches several companies (`worker.sources.identity`).
ON_AMBIGUOUS = ("ask", "best", "fail")


@bp.post("/generate")
def generate() -> tuple[Response, int]:
    """Queue a report. Limited per user to SUBMIT_RATE_PER_MINUTE, with the dashboard (create_app)."""
    settings = current_app.extensions["settings"]
    try:
        payload, uploads = _read_request()
        startup = validate_startup(payload.get("startup"))
        website = validate_website(payload.get("website"))
        notes = validate_notes(payload.get("notes"))
        cap = report_cap(payload.get("max_cost_usd"), settings.max_cost_per_report_usd)
        documents = accept_documents(uploads, settings)
    except (ValidationError, InvalidMaterial) as exc:
        return error_response(400, str(exc))
    material = Material(website=website, notes=notes, documents=documents)
    user = current_user.username
    refusal = too_many_live_jobs(user, 1)
    if refusal:
        return error_response(429, refusal)
    idempotency_key = request.headers.get("Idempotency-Key", "").strip() or None
    if idempotency_key and len(idempotency_key) > 200:
        return error_response(400, "The Idempotency-Key header must be at most 200 characters.")
    fresh = payload.get("fresh", False)
    if not isinstance(fresh, bool):
        return error_response(400, '"fresh" must be true or false.')
    on_ambiguous = payload.get("on_ambiguous") or settings.api_on_ambiguous
    if on_ambiguous not in ON_AMBIGUOUS:
        return error_response(400, '"on_ambiguous" must be "ask", "best" or "fail".')
    # A repeated Idempotency-Key answers with its job, which costs nothing more.
    repeated = idempotency_key and jobs().store.find_by_idempotency_key(user, idempotency_key)
    over = None if repeated else over_budget([(startup, material)], fresh=fresh, max_cost_usd=cap)
    if over:
        return over_budget_response(over)
    try:
        submission = jobs().request_report(
            startup,
            current_user,
            idempotency_key=idempotency_key,
            fresh=fresh,
            material=material,
            on_ambiguous=on_ambiguous,
            max_cost_usd=cap,
        )
    except QueueUnavailable:
        return error_response(503, QUEUE_DOWN)
    # What SUBMIT_RATE_PER_MINUTE counts (create_app): a new job, not one joined or repeated.
    g.submitted = 1 if submission.outcome == "queued" else 0
    job = submission.job
    status_url = url_for("api.status", job_id=job.id)
    body: dict[str, Any] = {"job_id": job.id, "status": submission.outcome, "status_url": status_url}
    if submission.outcome == "joined":
        body["note"] = (
            'A report on this startup is already being written: this is that job. Send "fresh": true for a new one.'
        )
    if submission.outcome != "queued":
        body["state"] = job.state
    response = jsonify(body)
    response.headers["Location"] = status_url
    return response, 202 if submission.outcome == "queued" else 200


@bp.post("/api/jobs/<job_id>/cancel")
def cancel(job_id: str) -> tuple[Response, int]:
    try:
        job = jobs().cancel(job_id, current_user)
    except NoSuchJob as exc:
        return error_response(404, str(exc))
    except NotAllowed as exc:
        return error_response(403, str(exc))
    except NotCancellable as exc:
        return error_response(409, str(exc))
    return jsonify(job_summary(job)), 200


@bp.get("/status/<job_id>")
def status(job_id: str) -> tuple[Response, int]:
    job = jobs().get(job_id, current_user)
    if job is None:
        return error_response(404, f"No job with id {job_id!r}.")
    return jsonify(job_detail(job)), 200


@bp.get("/api/jobs")
def list_jobs() -> tuple[Response, int]:
    limit = parse_page_number(request.args.get("limit", str(DEFAULT_LIST_LIMIT)), maximum=MAX_LIST_LIMIT)
    if limit is None:
        return error_response(400, f'"limit" must be a whole number from 1 to {MAX_LIST_LIMIT}.')
    before = None
    if "before" in request.args:
        before = jobs().get(request.args["before"], current_user)
        if before is None:
            return error_response(400, '"before" must be the id of a job, as in the "next" link of the page before.')
    # One more than asked says whether there is a next page.
    rows = jobs().recent(limit + 1, current_user, before=before)
    page = rows[:limit]
    body: dict[str, Any] = {"jobs": [job_summary(job) for job in page]}
    if len(rows) > limit:
        body["next"] = url_for("api.list_jobs", limit=limit, before=page[-1].id)
    return jsonify(body), 200


def no_worker_check(*, database_up: bool) -> str:
    """No worker answers: a fault while jobs wait for one, a quiet moment otherwise."""
    waiting = jobs().store.count_live() if database_up else 0
    if not waiting:
        return "ok"
    jobs_wait = "1 job waits" if waiting == 1 else f"{waiting} jobs wait"
    return f"no worker answers while {jobs_wait}: start one (./run_worker.sh)"


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Open to anyone (load balancers): a part is named and called unreachable, never its address
    or the exception's text, which the API's log keeps."""
    checks: dict[str, str] = {}
    try:
        current_app.extensions["redis"].ping()
        checks["redis"] = "ok"
    except redis.RedisError:
        current_app.logger.warning("healthz: Redis is unreachable", exc_info=True)
        checks["redis"] = "unreachable"
    try:
        jobs().store.ping()
        checks["database"] = "ok"
    except Exception:
        current_app.logger.warning("healthz: the database is unreachable", exc_info=True)
        checks["database"] = "unreachable"
    names: list[str] | None = None
    if checks["redis"] == "ok":
        # Until this process's first ping is back, a second or so after it starts (or after a
        # minute without a question), the workers count as up.
        names = jobs().workers.answering()
        checks["workers"] = "ok" if names is None or names else no_worker_check(database_up=checks["database"] == "ok")
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "degraded", **checks, "worker_names": names}
    return jsonify(body), 200 if healthy else 503
