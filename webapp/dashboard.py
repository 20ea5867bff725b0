"""The analysts' dashboard: submit one startup or a batch, and watch a card per job.

Every route works as a plain form post with a redirect when JavaScript is off; with htmx, the
same routes answer with the fragments to swap in (new cards, the form with its notice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from webapp.api import job_summary
from webapp.csv_import import MAX_CSV_BYTES, read_companies
from webapp.errors import QUEUE_DOWN, error_response, too_many_live_jobs
from webapp.estimates import OverBudgetError, over_budget
from webapp.extensions import jobs
from webapp.job_views import card_for
from webapp.validation import (
    ValidationError,
    parse_batch,
    report_cap,
    upload_filename,
    uploaded_documents,
    validate_notes,
    validate_website,
)
from worker.jobs import (
    InvalidMaterial,
    NoSuchJob,
    NotAllowed,
    NotAsking,
    NotCancellable,
    NotContinuable,
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
    #: What was wrong with each row of an imported CSV that was not queued.
    problems: list[str] = field(default_factory=list)


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
    companies_csv = request.files.get("companies")
    if companies_csv:
        return submit_companies_csv(companies_csv)
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
        cap = report_cap(request.form.get("max_cost_usd"), settings.max_cost_per_report_usd)
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
    over = over_budget(
        [(name, material) for name in batch.names], fresh=request.form.get("fresh") == "on", max_cost_usd=cap
    )
    if over:
        return refused(f"Nothing was queued. {over.message}", status=402)

    queued = queue_reports([(name, material) for name in batch.names], max_cost_usd=cap)
    if queued.stopped_at is not None:
        error = QUEUE_DOWN
        if queued.created:
            error = (
                f"The job queue (Redis) is unreachable: {len(queued.created)} of {len(batch.names)} were queued, "
                "the names left in the box were not. Try again in a minute."
            )
        rest = "\n".join(batch.names[queued.stopped_at :])
        return _form_error(FormState(text=rest, error=error), created=queued.created, status=503)
    return submitted(
        queued, f"Queued {len(queued.created)} report{'s' if len(queued.created) != 1 else ''}. {batch.note}"
    )


@dataclass
class Queued:
    created: list[Job] = field(default_factory=list)
    joined: list[Job] = field(default_factory=list)
    #: Where the batch stopped because the queue (Redis) was unreachable, or None: it was all queued.
    stopped_at: int | None = None


def queue_reports(entries: list[tuple[str, Material]], *, max_cost_usd: float | None) -> Queued:
    """Request a report on each (name, material), in order, until the queue is unreachable; each
    under the cost cap `max_cost_usd` (None: no cap)."""
    fresh = request.form.get("fresh") == "on"
    queued = Queued()
    for position, (name, material) in enumerate(entries):
        try:
            submission = jobs().request_report(
                name,
                current_user,
                fresh=fresh,
                material=material,
                max_cost_usd=max_cost_usd,
            )
        except QueueUnavailable:
            queued.stopped_at = position
            break
        (queued.created if submission.outcome == "queued" else queued.joined).append(submission.job)
    g.submitted = len(queued.created)  # what SUBMIT_RATE_PER_MINUTE counts (create_app)
    return queued


def submitted(queued: Queued, notice: str, problems: list[str] | None = None) -> Response | tuple[str, int]:
    """The answer to a batch that was queued: the new cards and the form with `notice` (and the
    rows of a CSV that were not queued), or a redirect to the dashboard that shows them."""
    notice = notice.strip()
    if queued.joined:
        names = ", ".join(job.startup for job in queued.joined)
        notice += f" Already being written, so not started again: {names} (tick “Start fresh reports” to start anew)."
    form = FormState(notice=notice, problems=problems or [])
    if htmx_request.htmx:
        cards = [card_for(job) for job in reversed(queued.created)]
        return render_template("dashboard/_submitted.html", cards=cards, form=form), 200
    if form.problems:
        # The page itself, not a redirect: up to 50 row messages would not fit a session cookie.
        return render_dashboard(form)
    flash(notice)
    return redirect(url_for(".index"), 303)


def submit_companies_csv(upload: FileStorage) -> Response | tuple[str, int]:
    """A CSV of companies (`webapp.csv_import`): its good rows are queued, each with its own
    website and notes as material; its bad rows are listed, each with its row number and reason."""
    form = request.form
    if any(form.get(field_name, "").strip() for field_name in ("startups", "website", "notes")) or request.files.get(
        "document"
    ):
        return _form_error(
            FormState(
                error="Nothing was queued: import a CSV, or type names (with material for one startup), not both.",
                text=form.get("startups", ""),
                website=form.get("website", ""),
                notes=form.get("notes", ""),
            )
        )
    settings = current_app.extensions["settings"]
    try:
        imported = read_companies(upload.read(MAX_CSV_BYTES + 1))
        cap = report_cap(form.get("max_cost_usd"), settings.max_cost_per_report_usd)
    except ValidationError as exc:
        return _form_error(FormState(error=f"Nothing was queued. {exc}"))
    rows_not_queued = imported.problems
    if not imported.companies:
        return _form_error(
            FormState(error="Nothing was queued: no row of the CSV file can be used.", problems=rows_not_queued)
        )
    refusal = too_many_live_jobs(current_user.username, len(imported.companies))
    if refusal:
        return _form_error(FormState(error=f"Nothing was queued. {refusal}"), status=429)
    over = over_budget(
        [(company.name, company.material) for company in imported.companies],
        fresh=form.get("fresh") == "on",
        max_cost_usd=cap,
    )
    if over:
        return _form_error(FormState(error=f"Nothing was queued. {over.message}", problems=rows_not_queued), status=402)

    queued = queue_reports([(company.name, company.material) for company in imported.companies], max_cost_usd=cap)
    if queued.stopped_at is not None:
        left = ", ".join(f"{c.name} (row {c.row})" for c in imported.companies[queued.stopped_at :])
        error = (
            f"The job queue (Redis) is unreachable: {len(queued.created)} of {len(imported.companies)} were "
            f"queued; not queued: {left}. Try again in a minute."
        )
        return _form_error(FormState(error=error, problems=rows_not_queued), created=queued.created, status=503)
    count = len(queued.created)
    source = upload_filename(upload.filename)[:100] if upload.filename else "the CSV file"
    return submitted(
        queued, f"Queued {count} report{'s' if count != 1 else ''} from {source}. {imported.note}", rows_not_queued
    )


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
    NotContinuable: 409,
    OverBudgetError: 402,
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
