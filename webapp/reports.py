"""Report files: the raw Markdown of a finished report, as a download."""

from __future__ import annotations

import re
import unicodedata

from flask import Blueprint, Response, current_app

from webapp.errors import error_response
from worker.store import SUCCESS

bp = Blueprint("reports", __name__)


def download_name(startup: str) -> str:
    """An ASCII file name for the report, e.g. "acme-gmbh-report.md"."""
    ascii_name = unicodedata.normalize("NFKD", startup).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", ascii_name).strip("-").lower()[:60]
    return f"{slug or 'startup'}-report.md"


@bp.get("/reports/<job_id>.md")
def download(job_id: str) -> Response | tuple[Response, int]:
    job = current_app.extensions["jobs"].get(job_id)
    if job is None:
        return error_response(404, f"No job with id {job_id!r}.")
    if job.state != SUCCESS or job.report_md is None:
        return error_response(409, f"The report is not ready yet (state {job.state}).", state=job.state)
    response = Response(job.report_md, mimetype="text/markdown")
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name(job.startup)}"'
    return response
