"""Report pages: one report rendered as a document, every report searchable, and the raw
Markdown as a download."""

from __future__ import annotations

import math
import re
import unicodedata

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user

from webapp.companies import history_of
from webapp.errors import error_response
from webapp.extensions import jobs
from webapp.job_views import card_for, format_duration
from webapp.rendering import render_report
from webapp.validation import parse_page_number
from webapp.word_report import report_docx
from worker.facts import load_facts
from worker.models import JobState

bp = Blueprint("reports", __name__)

PER_PAGE = 20


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


@bp.get("/reports/<job_id>")
def show(job_id: str) -> tuple[str, int]:
    job = jobs().get(job_id, current_user)
    if job is None:
        abort(404)
    if job.state != JobState.SUCCESS or job.report_md is None:
        return render_template("reports/pending.html", job=job, card=card_for(job)), 200
    rendered = render_report(job.report_md)
    duration = format_duration(job.duration_seconds) if job.duration_seconds is not None else "—"
    history = history_of(job, request.args.get("against"))
    facts = load_facts(job.facts)
    return render_template(
        "reports/show.html", job=job, report=rendered, duration=duration, history=history, facts=facts
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
