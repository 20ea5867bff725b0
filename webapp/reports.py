"""Report pages: one report rendered as a document, every report searchable, and the raw
Markdown as a download."""

from __future__ import annotations

import math
import re
import unicodedata

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from htmx_flask import make_response as htmx_response
from htmx_flask import request as htmx_request

from webapp.companies import history_of
from webapp.errors import error_response
from webapp.extensions import jobs
from webapp.job_views import card_for, format_duration
from webapp.live_report import live_report
from webapp.rendering import render_report
from webapp.validation import parse_page_number
from webapp.word_report import report_docx
from worker.draft import READ_STEPS, SOURCES
from worker.facts import load_facts
from worker.models import QUEUED_STATES, Job, JobState
from worker.sources.citations import link_citations

bp = Blueprint("reports", __name__)

PER_PAGE = 20
HTMX_STOP_POLLING = 286  # htmx swaps this answer in and stops the element's polling


DOCX_MIMETYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def download_name(startup: str, extension: str = "md") -> str:
    """An ASCII file name for the report, e.g. "acme-gmbh-report.md"."""
    ascii_name = unicodedata.normalize("NFKD", startup).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", ascii_name).strip("-").lower()[:60]
    return f"{slug or 'startup'}-report.{extension}"


@bp.get("/reports")
def index() -> str:
    query = request.args.get("q", "").strip()[:200]
    page = parse_page_number(request.args.get("page")) or 1
    rows, total = jobs().search_reports(query, current_user, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    pages = max(1, math.ceil(total / PER_PAGE))
    if page > pages:  # past the end (an old link, a typed number): show the last page
        page = pages
        rows, total = jobs().search_reports(query, current_user, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    return render_template(
        "reports/index.html",
        reports=rows,
        query=query,
        page=page,
        pages=pages,
        total=total,
        format_duration=format_duration,
        compare_max=current_app.extensions["settings"].compare_max,
    )


def finished_report(job: Job) -> dict[str, object]:
    """What the finished report's article (`reports/_report.html`) shows: its citations link to
    their sources, as they did on the page while it was written."""
    research = jobs().store.load_research(job.id)
    markdown = link_citations(job.report_md, research.sources) if research is not None else job.report_md
    duration = format_duration(job.duration_seconds) if job.duration_seconds is not None else "—"
    history = history_of(job, request.args.get("against"))
    facts = load_facts(job.facts)
    return {"job": job, "report": render_report(markdown), "duration": duration, "history": history, "facts": facts}


def written_so_far(job: Job) -> dict[str, object]:
    """What the article of a report still being written (`reports/_live.html`) shows."""
    live = live_report(job, jobs().draft(job))
    return {"job": job, "card": card_for(job), "live": live, "polls": job.state in QUEUED_STATES}


@bp.get("/reports/<job_id>")
def show(job_id: str) -> tuple[str, int]:
    job = jobs().get(job_id, current_user)
    if job is None:
        abort(404)
    if job.state == JobState.NEEDS_INPUT:
        # Its card asks which company the name means, as on the dashboard.
        return render_template("reports/pending.html", job=job, card=card_for(job)), 200
    if job.state != JobState.SUCCESS or job.report_md is None:
        return render_template("reports/live.html", **written_so_far(job)), 200
    return render_template("reports/show.html", **finished_report(job)), 200


@bp.get("/reports/<job_id>/live")
def live(job_id: str) -> Response | tuple[str, int]:
    """What the page of a report being written polls: its progress, and each section finished
    since the page last had them (`shown`), swapped in out of band, in its place. Once the job
    stops, the whole article is swapped for the finished report (or the stopped one, with its
    reason; or, when it waits for the analyst to say which company it is about, for its card,
    which asks and then follows the job), and polling ends; the page is never reloaded."""
    job = jobs().get(job_id, current_user)
    if job is None:
        status = HTMX_STOP_POLLING if htmx_request.htmx else 404
        return render_template("errors/_card_missing.html", job_id=job_id), status
    if not htmx_request.htmx:  # a fragment, for the page's poll; a browser opening it gets the page
        return redirect(url_for(".show", job_id=job_id), 303)
    if job.state not in QUEUED_STATES:
        if job.state == JobState.NEEDS_INPUT:  # its card asks which company, and follows the job
            article = render_template("reports/_pending.html", job=job, card=card_for(job))
        elif job.state == JobState.SUCCESS and job.report_md is not None:
            article = render_template("reports/_report.html", **finished_report(job))
        else:
            article = render_template("reports/_live.html", **written_so_far(job))
        return htmx_response(article, HTMX_STOP_POLLING, retarget="#report", reswap="outerHTML")
    known = {key for key, _ in READ_STEPS} | {SOURCES}
    shown = {key for key in request.args.get("shown", "").split(",") if key in known}
    live_now = live_report(job, jobs().draft(job, skip=shown))
    return render_template(
        "reports/_live_update.html",
        job=job,
        card=card_for(job),
        live=live_now,
        polls=True,
        # The new sections, and the placeholders (which change: "Waiting for the plan…", then
        # "Being written…"); not the sections the page shows already.
        swapped=[section for section in live_now.sections if section.html != ""],
    ), 200


def _report_file(job_id: str, extension: str) -> Response | tuple[Response, int]:
    """The finished report as a download: its Markdown, or the Word document made from it."""
    job = jobs().get(job_id, current_user)
    if job is None:
        return error_response(404, f"No job with id {job_id!r}.")
    if job.state != JobState.SUCCESS or job.report_md is None:
        return error_response(409, f"The report is not ready yet (state {job.state}).", state=job.state)
    if extension == "docx":
        response = Response(report_docx(job.report_md), mimetype=DOCX_MIMETYPE)
    else:
        response = Response(job.report_md, mimetype="text/markdown")
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name(job.startup, extension)}"'
    return response


@bp.get("/reports/<job_id>.md")
def download(job_id: str) -> Response | tuple[Response, int]:
    return _report_file(job_id, "md")


@bp.get("/reports/<job_id>.docx")
def download_docx(job_id: str) -> Response | tuple[Response, int]:
    return _report_file(job_id, "docx")
