"""Following companies in the web app: watches (JSON API and dashboard), the watchlist page, the
notifications list with its count in the navbar, where a user is told (account page), and the
delivery attempts of a company (JSON, and a partial for the company page).

The partials `companies/_watch.html` and `companies/_deliveries.html` need only a `company_id`:
they read what they show through the template globals registered here, so any page can include
them."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from htmx_flask import request as htmx_request

from webapp.api import _iso
from webapp.auth import _safe_next
from webapp.errors import error_response
from webapp.extensions import accounts, jobs
from worker.alerts import (
    WEBHOOK_FORMATS,
    alert_settings,
    deliveries_of,
    mark_read,
    notifications_of,
    save_alert_settings,
    unread_count,
    validate_webhook_url,
)
from worker.companies import count_versions, get_company
from worker.models import MAX_WEBSITE_CHARS, Delivery, Watch
from worker.store import JobStore
from worker.watches import (
    CADENCES,
    InvalidCadence,
    NoSuchCompany,
    NoSuchWatch,
    NotYourWatch,
    WatchEntry,
    describe_every,
    parse_every,
    unwatch,
    watch,
    watch_of,
    watches_of,
)

bp = Blueprint("watches", __name__)

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_CHARS = 320


def _store() -> JobStore:
    return jobs().store


def _min_interval() -> int:
    return current_app.extensions["settings"].watch_min_interval


def watch_json(entry: WatchEntry) -> dict[str, Any]:
    company, row = entry.company, entry.watch
    return {
        "id": row.id,
        "company": {"id": company.id, "name": company.name, "website": company.website},
        "every": describe_every(row.every_seconds),
        "every_seconds": row.every_seconds,
        "created_at": _iso(row.created_at),
        "last_run": _iso(entry.last_run),
        "last_report_id": entry.last_job_id,
        "next_run": _iso(company.next_run_at) if row.every_seconds else None,
        "deliveries_url": url_for("watches.company_deliveries", company_id=company.id),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "change_id": delivery.change_id,
        "channel": delivery.channel,
        # A watcher's address or URL is theirs: others see only which kind it was.
        "target": delivery.target if _may_see_target(delivery) else None,
        "to": "deployment" if delivery.user_id is None else "watcher",
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "last_attempt_at": _iso(delivery.last_attempt_at),
        "sent_at": _iso(delivery.sent_at),
        "created_at": _iso(delivery.created_at),
    }


def _may_see_target(delivery: Delivery) -> bool:
    return current_user.is_admin or delivery.user_id == current_user.id


def _may_see_company(company_id: int) -> bool:
    """Whether the company exists and has a version the requester may read: with
    PRIVATE_REPORTS=true, another analyst's company is as unknown here as on its page."""
    if get_company(_store(), company_id) is None:
        return False
    owner = jobs().readable_owner(current_user)
    return owner is None or count_versions(_store(), company_id, owner=owner) > 0


def _company_of(payload: dict[str, Any]) -> int:
    """The company a watch request names: `company_id`, or the company of `report_id`."""
    company_id, report_id = payload.get("company_id"), payload.get("report_id")
    if company_id is not None:
        if isinstance(company_id, str) and company_id.strip().isdigit():
            company_id = int(company_id)
        if not isinstance(company_id, int) or isinstance(company_id, bool):
            raise ValueError('"company_id" must be a company\'s id (a whole number).')
        if not _may_see_company(company_id):
            raise NoSuchCompany(f"No company with id {company_id}.")
        return company_id
    if report_id is not None:
        job = jobs().get(str(report_id), current_user)
        if job is None:
            raise NoSuchCompany(f"No report with id {report_id!r}.")
        if job.company_id is None:
            raise ValueError("This report belongs to no company yet (it has not finished, or predates companies).")
        return job.company_id
    raise ValueError('Name the company: {"company_id": 1, "every": "weekly"} or {"report_id": "…", "every": "weekly"}.')


# The JSON API.


@bp.post("/api/watches")
def create_watch() -> tuple[Response, int]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return error_response(400, 'Send a JSON object, e.g. {"company_id": 1, "every": "weekly"}.')
    try:
        company_id = _company_of(payload)
        every = parse_every(payload.get("every", "weekly"), _min_interval())
    except NoSuchCompany as exc:
        return error_response(404, str(exc))
    except (ValueError, InvalidCadence) as exc:
        return error_response(400, str(exc))
    existed = watch_of(_store(), current_user.id, company_id) is not None
    row = watch(_store(), current_user.id, company_id, every)
    entry = next(e for e in watches_of(_store(), current_user.id, company_id) if e.watch.id == row.id)
    return jsonify_with_location(watch_json(entry), 200 if existed else 201)


def jsonify_with_location(body: dict[str, Any], status: int) -> tuple[Response, int]:
    response = jsonify(body)
    response.headers["Location"] = url_for("watches.list_watches")
    return response, status


@bp.get("/api/watches")
def list_watches() -> tuple[Response, int]:
    return jsonify({"watches": [watch_json(entry) for entry in watches_of(_store(), current_user.id)]}), 200


@bp.delete("/api/watches/<int:watch_id>")
def delete_watch(watch_id: int) -> tuple[Response, int]:
    try:
        unwatch(_store(), watch_id, current_user.id, is_admin=current_user.is_admin)
    except NoSuchWatch as exc:
        return error_response(404, str(exc))
    except NotYourWatch as exc:
        return error_response(403, str(exc))
    return Response(status=204), 204


@bp.get("/api/companies/<int:company_id>/deliveries")
def company_deliveries(company_id: int) -> tuple[Response, int]:
    if not _may_see_company(company_id):
        return error_response(404, f"No company with id {company_id}.")
    rows = deliveries_of(_store(), company_id)
    return jsonify({"company_id": company_id, "deliveries": [delivery_json(d) for d, _ in rows]}), 200


# Pages.


@bp.get("/watches")
def index() -> str:
    return render_template("watches/index.html", entries=watches_of(_store(), current_user.id))


@bp.post("/watches")
def save_from_form() -> ResponseReturnValue:
    """The watch form of a report or company page: with htmx the form swaps itself, without it the
    browser goes back to the page it came from."""
    back = _safe_next(request.form.get("next"))
    try:
        company_id = _company_of({"company_id": request.form.get("company_id")})
        every = parse_every(request.form.get("every", ""), _min_interval())
    except (NoSuchCompany, ValueError, InvalidCadence) as exc:
        if htmx_request.htmx:
            return render_template("companies/_watch.html", company_id=request.form.get("company_id"), error=str(exc))
        flash(str(exc))
        return redirect(back, 303)
    watch(_store(), current_user.id, company_id, every)
    if htmx_request.htmx:
        return render_template("companies/_watch.html", company_id=company_id, saved=True)
    flash("Watching: " + describe_every(every) if every else "Re-runs are off for this company.")
    return redirect(back, 303)


@bp.post("/watches/<int:watch_id>/delete")
def delete_from_form(watch_id: int) -> ResponseReturnValue:
    try:
        unwatch(_store(), watch_id, current_user.id, is_admin=current_user.is_admin)
    except (NoSuchWatch, NotYourWatch) as exc:
        flash(str(exc))
    return redirect(url_for(".index"), 303)


@bp.get("/notifications")
def notifications() -> str:
    return render_template("watches/notifications.html", entries=notifications_of(_store(), current_user.id))


@bp.post("/notifications/read")
def read_notifications() -> Response:
    """Mark one notification read (`id` in the form), or all of them."""
    raw = request.form.get("id", "")
    mark_read(_store(), current_user.id, int(raw) if raw.isdigit() else None)
    return redirect(url_for(".notifications"), 303)


@bp.post("/account/alerts")
def save_alerts() -> ResponseReturnValue:
    """Where the user is told: an e-mail address, a webhook URL (checked by the SSRF guard now,
    and again at each send) and its format."""
    form = {key: request.form.get(key, "").strip() for key in ("email", "webhook_url", "webhook_format")}
    try:
        email = form["email"] or None
        if email and (len(email) > MAX_EMAIL_CHARS or not EMAIL_PATTERN.match(email)):
            raise ValueError("The e-mail address does not look like one (name@example.com).")
        webhook_url = form["webhook_url"] or None
        if webhook_url:
            if len(webhook_url) > MAX_WEBSITE_CHARS:
                raise ValueError(f"A webhook URL may be at most {MAX_WEBSITE_CHARS} characters.")
            allow_private = current_app.extensions["settings"].fetch_allow_private
            webhook_url = validate_webhook_url(webhook_url, allow_private=allow_private)
        webhook_format = form["webhook_format"] or "json"
        if webhook_format not in WEBHOOK_FORMATS:
            raise ValueError('The webhook format must be "json" or "slack".')
    except ValueError as exc:
        tokens = accounts().tokens_of(current_user.id)
        page = render_template(
            "auth/account.html", tokens=tokens, new_secret=None, alert_error=str(exc), alert_form=form
        )
        return page, 400
    save_alert_settings(_store(), current_user.id, email=email, webhook_url=webhook_url, webhook_format=webhook_format)
    flash("Alert settings saved.")
    return redirect(url_for("account.account"), 303)


# What the partials and the navbar read.


@bp.app_template_global()
def unread_notifications() -> int:
    """The navbar's count: a call, so that only pages that show the navbar pay the query."""
    return unread_count(_store(), current_user.id) if current_user.is_authenticated else 0


@bp.app_template_global()
def current_watch(company_id: int | str | None) -> Watch | None:
    if not current_user.is_authenticated or company_id is None or not str(company_id).isdigit():
        return None
    return watch_of(_store(), current_user.id, int(company_id))


@bp.app_template_global()
def company_deliveries_of(company_id: int) -> list[Delivery]:
    return [delivery for delivery, _ in deliveries_of(_store(), int(company_id))]


@bp.app_template_global()
def my_alert_settings() -> dict[str, str]:
    user = alert_settings(_store(), current_user.id) if current_user.is_authenticated else None
    return {
        "email": (user.email if user else None) or "",
        "webhook_url": (user.webhook_url if user else None) or "",
        "webhook_format": (user.webhook_format if user else None) or "json",
    }


@bp.app_context_processor
def watch_globals() -> dict[str, object]:
    return {"watch_cadences": [name for name in CADENCES], "describe_every": describe_every}
