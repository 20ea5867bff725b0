"""The analysts' dashboard: submit one startup or a batch, and watch a card per job.

Every route works as a plain form post with a redirect when JavaScript is off; with htmx, the
same routes answer with the fragments to swap in (new cards, the form with its notice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis
from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from htmx_flask import request as htmx_request
from werkzeug.wrappers import Response

from webapp.api import job_summary
from webapp.errors import QUEUE_DOWN, error_response, too_many_live_jobs
from webapp.estimates import over_budget
from webapp.extensions import jobs
from webapp.job_views import card_for
from webapp.validation import ValidationError, parse_batch, uploaded_documents, validate_notes, validate_website
from worker.jobs import (
    InvalidMaterial,
    NoSuchJob,
    NotAllowed,
    NotAsking,
    NotCancellable,
    NotRetryable,
    QueueUnavailable,
    accept_documents,
)
from worker.models import Job
from worker.research import Material

bp = Blueprint("dashboard", __name__)

RECENT_CARDS = 50
HTMX_STOP_POLLING = 286  # htmx swaps this answer in and stops the element's polling


@dataclass
class FormState:
    text: str = ""
    error: str = ""
    notice: str = ""
    website: str = ""
    notes: str = ""


def queue_reachable() -> bool:
    try:
        return bool(current_app.extensions["redis"].ping())
    except redis.RedisError:
        return False


def no_worker_answers() -> bool:
    """True when no worker answered the latest ping (a few seconds old at most). A page never
    waits for a ping: until this process's first one is back, it assumes a worker is up."""
    return jobs().workers.answering() == []


def render_dashboard(form: FormState, status: int = 200) -> tuple[str, int]:
    cards = [card_for(job) for job in jobs().recent(RECENT_CARDS, current_user)]
    queue_down = not queue_reachable()
    no_worker = not queue_down and no_worker_answers()
    page = render_template("dashboard/index.html", cards=cards, form=form, queue_down=queue_down, no_worker=no_worker)
    return page, status


@bp.get("/")
def index() -> tuple[str, int]:
    notices = get_flashed_messages()
    return render_dashboard(FormState(notice=" ".join(notices)))


def batch_size() -> int:
    """What a batch asks of SUBMIT_RATE_PER_MINUTE (create_app), checked before it runs: one per
    name (one for a batch too long or empty, which is refused anyway and then costs nothing)."""
    try:
        return len(parse_batch(request.form.get("startups", "")).names)
    except ValidationError:
        return 1


@bp.post("/jobs")
def submit() -> Response | tuple[str, int]:
    text = request.form.get("startups", "")
    website_text, notes_text = request.form.get("website", ""), request.form.get("notes", "")

    def refused(message: str, status: int = 400) -> tuple[str, int]:
        return _form_error(FormState(text=text, error=message, website=website_text, notes=notes_text), status=status)

    settings = current_app.extensions["settings"]
    uploads = uploaded_documents(request.files)
    try:
        batch = parse_batch(text)
        material = Material(
            website=validate_website(website_text),
            notes=validate_notes(notes_text),
            documents=accept_documents(uploads, settings),
        )
    except (ValidationError, InvalidMaterial) as exc:
        return refused(f"Nothing was queued. {exc}" + (" Choose the document again." if uploads else ""))
    if material and len(batch.names) > 1:
        return refused(
            "Nothing was queued: a website, notes or a document belong to one startup. Enter one name "
            "with them, or clear them to queue several names." + (" Choose the document again." if uploads else "")
        )

    user = current_user.username
    refusal = too_many_live_jobs(user, len(batch.names))
    if refusal:
        return refused(f"Nothing was queued. {refusal}", status=429)
    over = over_budget(len(batch.names))
    if over:
        return refused(f"Nothing was queued. {over.message}", status=402)

    fresh = request.form.get("fresh") == "on"
    created: list[Job] = []
    joined: list[Job] = []
    for position, name in enumerate(batch.names):
        try:
            submission = jobs().request_report(name, current_user, fresh=fresh, material=material)
        except QueueUnavailable:
            error = QUEUE_DOWN
            if created:
                error = (
                    f"The job queue (Redis) is unreachable: {len(created)} of {len(batch.names)} were queued, "
                    "the names left in the box were not. Try again in a minute."
                )
            g.submitted = len(created)  # what SUBMIT_RATE_PER_MINUTE counts (create_app)
            rest = "\n".join(batch.names[position:])
            return _form_error(FormState(text=rest, error=error), created=created, status=503)
        (created if submission.outcome == "queued" else joined).append(submission.job)
    g.submitted = len(created)

    notice = f"Queued {len(created)} report{'s' if len(created) != 1 else ''}. {batch.note}".strip()
    if joined:
        names = ", ".join(job.startup for job in joined)
        notice += f" Already being written, so not started again: {names} (tick “Start fresh reports” to start anew)."
    if htmx_request.htmx:
        cards = [card_for(job) for job in reversed(created)]
        return render_template("dashboard/_submitted.html", cards=cards, form=FormState(notice=notice)), 200
    flash(notice)
    return redirect(url_for(".index"), 303)


@bp.errorhandler(RateLimitExceeded)
def too_many_submissions(exc: RateLimitExceeded) -> tuple[str, int]:
    """Over SUBMIT_RATE_PER_MINUTE: the form says so and keeps what was typed."""
    again = " Choose the document again." if uploaded_documents(request.files) else ""
    form = FormState(
        text=request.form.get("startups", ""),
        website=request.form.get("website", ""),
        notes=request.form.get("notes", ""),
        error=f"Nothing was queued. {exc.description}{again}",
    )
    return _form_error(form, status=429)


def _form_error(form: FormState, created: list[Job] | None = None, status: int = 400) -> tuple[str, int]:
    if htmx_request.htmx:
        # 200 so that htmx swaps it in: the form comes back out of band, with the user's text.
        cards = [card_for(job) for job in reversed(created or [])]
        return render_template("dashboard/_submitted.html", cards=cards, form=form), 200
    return render_dashboard(form, status)


def missing_card(job_id: str) -> tuple[str, int]:
    """The answer about a job the user cannot see (never issued, or private to another user).
    htmx swaps no 4xx answer, so a live card would poll a vanished job forever; 286 is htmx's
    "stop polling", and the card becomes the notice."""
    status = HTMX_STOP_POLLING if htmx_request.htmx else 404
    return render_template("errors/_card_missing.html", job_id=job_id), status


#: What an action on a job (cancel, retry, choose) answers when it is refused, by the reason.
REFUSAL_STATUS: dict[type[Exception], int] = {
    ValidationError: 400,
    NotAllowed: 403,
    NoSuchJob: 404,
    NotCancellable: 409,
    NotRetryable: 409,
    NotAsking: 409,
    QueueUnavailable: 503,
}
ACTION_REFUSALS = tuple(REFUSAL_STATUS)


def refusal(exc: Exception) -> tuple[str, int]:
    """The sentence and the status for a refused action."""
    message = QUEUE_DOWN if isinstance(exc, QueueUnavailable) else str(exc)
    return message, next(status for kind, status in REFUSAL_STATUS.items() if isinstance(exc, kind))


def refused_action(job_id: str, message: str, status: int) -> tuple[str, int]:
    """An action on a card that was not done: with htmx, the card stays where it is with the
    reason (htmx swaps no 4xx answer, and an empty swap would make it vanish), or becomes the
    notice if the user cannot see the job; without htmx, the dashboard says why, with the status."""
    if not htmx_request.htmx:
        return render_dashboard(FormState(error=message), status)
    job = jobs().get(job_id, current_user)
    if job is None:
        return missing_card(job_id)
    return render_template("jobs/_card.html", card=card_for(job), card_error=message), 200


@bp.get("/jobs/<job_id>/card")
def card(job_id: str) -> tuple[str, int]:
    """One card: what a live card polls. The job's row (and the user's, to log them in), nothing else."""
    job = jobs().get(job_id, current_user)
    if job is None:
        return missing_card(job_id)
    return render_template("jobs/_card.html", card=card_for(job)), 200


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> Response | tuple[str, int]:
    """Cancel a queued or running job from its card (its owner or an admin)."""
    try:
        job = jobs().cancel(job_id, current_user)
    except ACTION_REFUSALS as exc:
        return refused_action(job_id, *refusal(exc))
    if htmx_request.htmx:
        return render_template("jobs/_card.html", card=card_for(job)), 200
    flash(f"Cancelled the report on {job.startup}.")
    return redirect(url_for(".index"), 303)


@bp.post("/jobs/<job_id>/choose")
def choose(job_id: str) -> Response | tuple[str, int] | tuple[Response, int]:
    """Answer a job that asks which company its name means (its owner or an admin): the website
    of one of its candidates, or of another company. A form from the card, or JSON from a script
    (`{"website": "…"}`, answered with the job as `/status` shows it)."""
    as_json = request.is_json
    fields = request.get_json(silent=True) if as_json else request.form

    try:
        website = validate_website(fields.get("website") if isinstance(fields, Mapping) else None)
        if website is None:
            raise ValidationError("Choose one of the companies, or give the website of the one you mean.")
        job = jobs().choose_company(job_id, website, current_user)
    except ACTION_REFUSALS as exc:
        message, status = refusal(exc)
        return error_response(status, message) if as_json else refused_action(job_id, message, status)
    if as_json:
        return jsonify(job_summary(job)), 202
    if htmx_request.htmx:
        return render_template("jobs/_card.html", card=card_for(job)), 200
    flash(f"Queued the report on {job.startup} again, about {website}.")
    return redirect(url_for(".index"), 303)


@bp.post("/jobs/<job_id>/retry")
def retry(job_id: str) -> Response | tuple[str, int]:
    """Submit a failed job's startup again, as a new job whose card replaces the failed one (its
    owner or an admin)."""
    try:
        new_job = jobs().retry(job_id, current_user)
    except ACTION_REFUSALS as exc:
        return refused_action(job_id, *refusal(exc))
    if htmx_request.htmx:
        return render_template("jobs/_card.html", card=card_for(new_job)), 200
    flash(f"Queued {new_job.startup} again.")
    return redirect(url_for(".index"), 303)
