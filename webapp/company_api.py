"""The JSON API of companies and versions: companies, one company with its versions, and what a
report changed against an earlier version. Errors are JSON (`webapp.errors`), like the rest of
the API; who sees what follows the reports (`webapp.companies`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from flask_login import current_user

from webapp.api import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from webapp.companies import BadComparison, changes_of, comparison_base
from webapp.errors import error_response
from webapp.extensions import jobs
from webapp.validation import parse_page_number
from worker.companies import MAX_COMPANY_ID, count_versions, get_company, list_companies, material_versions, versions
from worker.jobs import NoSuchJob
from worker.models import Company, Job, JobState

bp = Blueprint("company_api", __name__)


def _iso(job: Job) -> str | None:
    return job.finished_at.isoformat().replace("+00:00", "Z") if job.finished_at else None


def version_summary(job: Job, material: dict[str, bool]) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "startup": job.startup,
        "finished_at": _iso(job),
        "report_url": url_for("reports.show", job_id=job.id),
        "changes_url": url_for("company_api.report_changes", job_id=job.id),
        # True or False once compared with the version before it; None for the first.
        "material": material.get(job.id),
    }


def company_summary(company: Company, owner: str | None) -> dict[str, Any]:
    latest = versions(jobs().store, company.id, owner=owner)[:1]
    return {
        "id": company.id,
        "name": company.name,
        "website": company.website,
        "versions_count": count_versions(jobs().store, company.id, owner=owner),
        "latest_version": version_summary(latest[0], {}) if latest else None,
        "url": url_for("company_api.company", company_id=company.id),
        "page_url": url_for("companies.show", company_id=company.id),
    }


@bp.get("/api/companies")
def list_all() -> tuple[Response, int]:
    limit = parse_page_number(request.args.get("limit", str(DEFAULT_LIST_LIMIT)), maximum=MAX_LIST_LIMIT)
    if limit is None:
        return error_response(400, f'"limit" must be a whole number from 1 to {MAX_LIST_LIMIT}.')
    before = None
    if "before" in request.args:
        before = parse_page_number(request.args["before"], maximum=MAX_COMPANY_ID)
        if before is None:
            return error_response(400, '"before" must be a company id, as in the "next" link of the page before.')
    owner = jobs().readable_owner(current_user)
    # One more than asked says whether there is a next page.
    rows = list_companies(jobs().store, limit + 1, before=before, owner=owner)
    page = rows[:limit]
    body: dict[str, Any] = {"companies": [company_summary(company, owner) for company in page]}
    if len(rows) > limit:
        body["next"] = url_for("company_api.list_all", limit=limit, before=page[-1].id)
    return jsonify(body), 200


@bp.get("/api/companies/<int:company_id>")
def company(company_id: int) -> tuple[Response, int]:
    owner = jobs().readable_owner(current_user)
    found = get_company(jobs().store, company_id)
    listed = versions(jobs().store, company_id, owner=owner) if found else []
    if found is None or not listed:
        return error_response(404, f"No company with id {company_id}.")
    material = material_versions(jobs().store, company_id)
    body = company_summary(found, owner)
    body["versions"] = [version_summary(job, material) for job in listed]
    return jsonify(body), 200


@bp.get("/api/reports/<job_id>/changes")
def report_changes(job_id: str) -> tuple[Response, int]:
    """What the report changed against an earlier version of its company: `?against=<job id>`, or
    by default the version before it. The first version has nothing to compare with."""
    job = jobs().get(job_id, current_user)
    if job is None:
        return error_response(404, f"No report with id {job_id!r}.")
    if job.state != JobState.SUCCESS:
        return error_response(409, f"The report is not ready yet (state {job.state}).", state=job.state)
    try:
        against = comparison_base(job, request.args.get("against"))
    except NoSuchJob as exc:
        return error_response(404, str(exc))
    except BadComparison as exc:
        return error_response(400, str(exc))
    if against is None:
        return jsonify(
            {
                "job_id": job.id,
                "previous_job_id": None,
                "message": "This is the first version of its company: there is nothing to compare it with.",
            }
        ), 200
    return jsonify(changes_of(job, against)), 200
