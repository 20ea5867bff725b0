"""Company pages: a company with its versions (its finished reports, newest first), and what a
report page shows of its company: the versions, and what it changed since the one before.

Who sees what follows the reports: with PRIVATE_REPORTS a user sees only the versions they may
read, and a company none of whose versions they may read does not exist for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user
from markupsafe import Markup

from webapp.extensions import jobs
from webapp.rendering import render_inline
from worker.companies import (
    changes_between,
    get_company,
    is_earlier,
    material_versions,
    previous_version,
    versions,
)
from worker.jobs import NoSuchJob, is_job_id
from worker.models import Company, Job, JobState

bp = Blueprint("companies", __name__)


@bp.app_template_filter("inline_markdown")
def inline_markdown(sentence: str) -> Markup:
    """A changed sentence as the report shows it (`**Head count:**` in bold, not with asterisks)."""
    return Markup(render_inline(sentence))  # safe: nh3 keeps only inline tags and safe links


class BadComparison(ValueError):
    """The version asked to compare with is not an earlier version of the same company."""


def comparison_base(job: Job, against_id: str | None) -> Job | None:
    """The version to compare `job` with: `against_id`'s, which must be an earlier version of its
    company that the current user may read (`NoSuchJob` when it is none they can see,
    `BadComparison` when it is not an earlier version); by default the version before `job`
    that they may read, None for the first."""
    if against_id is None:
        return previous_version(jobs().store, job, owner=jobs().readable_owner(current_user))
    against = jobs().get(against_id, current_user) if is_job_id(against_id) else None
    if against is None:
        raise NoSuchJob(f"No report with id {against_id!r}.")
    same_company = job.company_id is not None and against.company_id == job.company_id
    if against.state != JobState.SUCCESS or not same_company or not is_earlier(against, job):
        raise BadComparison(
            f'"against" must be the id of an earlier version of the same company; {against_id!r} is not one.'
        )
    return against


def changes_of(job: Job, against: Job) -> dict[str, Any]:
    threshold = current_app.extensions["settings"].change_threshold
    return changes_between(jobs().store, job, against, threshold=threshold)


@dataclass(frozen=True)
class History:
    """What the report page shows of the report's company."""

    company: Company | None = None
    versions: list[Job] = field(default_factory=list)
    material: dict[str, bool] = field(default_factory=dict)
    against: Job | None = None
    changes: dict[str, Any] | None = None
    error: str | None = None


def history_of(job: Job, against_id: str | None = None) -> History:
    """The company of a finished report, its versions the current user may read, and what the
    report changed against `against_id` (by default the version before it)."""
    store = jobs().store
    company = get_company(store, job.company_id) if job.company_id is not None else None
    if company is None:
        return History()
    listed = versions(store, company.id, owner=jobs().readable_owner(current_user))
    material = material_versions(store, company.id)
    try:
        against = comparison_base(job, against_id)
    except (NoSuchJob, BadComparison) as exc:
        return History(company, listed, material, error=str(exc))
    changes = changes_of(job, against) if against is not None else None
    return History(company, listed, material, against, changes)


@bp.get("/companies/<int:company_id>")
def show(company_id: int) -> str:
    store = jobs().store
    company = get_company(store, company_id)
    listed = versions(store, company_id, owner=jobs().readable_owner(current_user)) if company else []
    if not listed:  # none, or none this user may read: the same from outside
        abort(404)
    return render_template(
        "companies/show.html", company=company, versions=listed, material=material_versions(store, company_id)
    )
