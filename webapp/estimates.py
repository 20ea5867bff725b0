"""Spend before it happens: `POST /estimate` for scripts, the dashboard's live estimate under the
list of names, the monthly budget check that submissions call, and each user's spend this month
for the account page.

An estimate costs no model call and, most of the time, no query (`worker.estimate.Estimator`
keeps the measured size for a minute), so it is not counted against SUBMIT_RATE_PER_MINUTE.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_login import current_user

from webapp.errors import error_response
from webapp.extensions import jobs
from webapp.validation import MAX_BATCH, ValidationError, parse_batch, validate_startup
from worker.budget import OverBudget, UserSpend, capped, check_budget, spend_by_user, spend_of
from worker.estimate import Estimate, Estimator
from worker.models import startup_key
from worker.research import Material

bp = Blueprint("estimates", __name__)


def estimator() -> Estimator:
    """The app's estimator, made on first use (it keeps the measured size between requests)."""
    extensions = current_app.extensions
    if "estimator" not in extensions:
        extensions["estimator"] = Estimator(jobs().store, extensions["settings"])
    return extensions["estimator"]


def _monthly_budget() -> float | None:
    return current_app.extensions["settings"].monthly_budget_usd_per_user


def over_budget(
    entries: list[tuple[str, Material]], *, fresh: bool = False, max_cost_usd: float | None = None
) -> OverBudget | None:
    """Why the current user may not request a report on each (name, material) this month, or
    None. Admins too: the budget is about money, and an admin's reports cost the same. A name that
    would join a report already being written adds nothing: that job counts among the live ones.
    A report under a cost cap (`max_cost_usd`) counts at no more than its cap: it cannot spend more."""
    budget = _monthly_budget()
    if budget is None:
        return None
    return check_budget(
        jobs().store,
        current_user.username,
        budget_usd=budget,
        reports=jobs().count_starting(entries, current_user, fresh=fresh),
        report_high_usd=estimator().estimate(1).high_usd,
        max_cost_usd=max_cost_usd,
    )


class OverBudgetError(Exception):
    """An action on a job refused by the monthly budget; the message says why (`OverBudget`)."""


def check_continuing(job_id: str, max_cost_usd: float) -> None:
    """Raise `OverBudgetError` if continuing the partial report `job_id` up to `max_cost_usd`
    could take its owner past the budget: it may spend its new cap less what it has spent (at
    most a report's high estimate), billed to its owner like the rest of it. A job that cannot
    be continued is left to `JobService.continue_report` to refuse."""
    budget = _monthly_budget()
    job = jobs().get(job_id, current_user) if budget is not None else None
    if job is None or not job.partial:
        return
    refusal = check_budget(
        jobs().store,
        job.created_by or current_user.username,
        budget_usd=budget,
        reports=1,
        report_high_usd=estimator().estimate(1).high_usd,
        max_cost_usd=max(0.0, max_cost_usd - job.cost_usd),
    )
    if refusal is not None:
        raise OverBudgetError(refusal.message)


def over_budget_response(refusal: OverBudget) -> tuple[Response, int]:
    """The API's refusal: 402 Payment Required, with the figures for a script."""
    return error_response(
        402,
        refusal.message,
        spent_usd=round(refusal.spent_usd, 6),
        budget_usd=refusal.budget_usd,
        committed_usd=round(refusal.committed_usd, 6),
        estimate_high_usd=round(refusal.asked_usd, 6),
    )


def _names_of(payload: dict[str, Any]) -> list[str]:
    """The distinct names of `{"startup": …}` or `{"startups": […]}`, validated as /generate does."""
    if ("startup" in payload) == ("startups" in payload):
        raise ValidationError('Send either "startup" (one name) or "startups" (a list of names).')
    if "startup" in payload:
        return [validate_startup(payload["startup"])]
    raw = payload["startups"]
    if not isinstance(raw, list) or not raw:
        raise ValidationError('"startups" must be a non-empty list of names.')
    if len(raw) > MAX_BATCH:
        raise ValidationError(f'"startups" has {len(raw)} names, more than the {MAX_BATCH} a batch may hold.')
    names: dict[str, str] = {}
    for position, value in enumerate(raw):
        try:
            name = validate_startup(value)
        except ValidationError as exc:
            raise ValidationError(f"startups[{position}]: {exc}") from None
        names.setdefault(startup_key(name), name)
    return list(names.values())


def _budget_of(estimate: Estimate, names: list[str]) -> dict[str, Any] | None:
    """What is left of the budget, and whether `names` fit in it as a submission of them would be
    checked (`over_budget`: names that would join count nothing, each report at most the default
    cap MAX_COST_PER_REPORT_USD), so that the estimate never says "refused" of what would pass."""
    budget = _monthly_budget()
    if budget is None:
        return None
    report_high = estimate.high_usd / max(1, estimate.reports)
    spend = spend_of(jobs().store, current_user.username, report_high_usd=report_high)
    left = budget - spend.spent_usd - spend.committed_usd
    default_cap = current_app.extensions["settings"].max_cost_per_report_usd
    asked = jobs().count_starting([(name, None) for name in names], current_user) * capped(report_high, default_cap)
    return {
        "budget_usd": budget,
        "spent_usd": round(spend.spent_usd, 6),
        "committed_usd": round(spend.committed_usd, 6),
        "left_usd": round(left, 6),
        "within_budget": asked <= max(left, 0.0),
    }


@bp.post("/estimate")
def estimate() -> tuple[Response, int]:
    """What the reports on the given names would cost (`worker.estimate`), and, with a monthly
    budget, whether they fit in what is left of it."""
    try:
        payload = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # absurdly deep nesting: no list of names either way
        payload = None
    if not isinstance(payload, dict):
        return error_response(400, 'Send a JSON object, e.g. {"startup": "Acme"} or {"startups": ["Acme", "Globex"]}.')
    try:
        names = _names_of(payload)
    except ValidationError as exc:
        return error_response(400, str(exc))
    result = estimator().estimate(len(names))
    body = result.as_dict()
    budget = _budget_of(result, names)
    if budget is not None:
        body["budget"] = budget
    return jsonify(body), 200


@bp.post("/jobs/estimate")
def estimate_fragment() -> tuple[str, int]:
    """The dashboard's live estimate for the names typed so far (htmx, as the list changes):
    nothing for an empty box, the batch's problem for a bad one."""
    text = request.form.get("startups", "")
    if not text.strip():
        return render_template("dashboard/_estimate.html", estimate=None, problem=""), 200
    try:
        batch = parse_batch(text)
    except ValidationError as exc:
        return render_template("dashboard/_estimate.html", estimate=None, problem=str(exc)), 200
    result = estimator().estimate(len(batch.names))
    return render_template(
        "dashboard/_estimate.html", estimate=result, budget=_budget_of(result, batch.names), problem=""
    ), 200


@bp.app_context_processor
def spend_on_pages() -> dict[str, object]:
    """For the account page: the user's spend this month, and every user's for an admin. Functions,
    so that only a page that shows them runs their queries."""

    def my_spend() -> dict[str, float | None]:
        spend = spend_of(jobs().store, current_user.username)
        return {"spent_usd": spend.spent_usd, "budget_usd": _monthly_budget()}

    def everyones_spend() -> list[UserSpend]:
        return spend_by_user(jobs().store) if current_user.is_admin else []

    return {"monthly_spend": my_spend, "everyones_spend": everyones_spend}
