"""Companies side by side: finished reports' key facts (`worker.facts`) in one table.

`/compare?ids=…` is the page (one column per company, one row per fact, the recommendation on
top); `/api/compare?ids=…` the same as JSON; `/compare.csv` and `/compare.xlsx` the downloads
(`webapp.spreadsheets`). `ids` is a comma-separated list of report ids, or `ids` repeated (the
/reports list's checkboxes send it so). From 2 to COMPARE_MAX distinct reports, each finished and
readable by the requester (PRIVATE_REPORTS); otherwise a message naming the ids that are not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask_login import current_user

from webapp.api import _iso
from webapp.errors import error_response
from webapp.extensions import jobs
from webapp.spreadsheets import comparison_csv, comparison_xlsx
from worker.facts import FACT_FIELDS, Fact, load_facts
from worker.models import Job, JobState

bp = Blueprint("compare", __name__)

MIN_COMPARED = 2
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class NotComparable(ValueError):
    """The ids cannot be compared; the message says why, `ids` are the ones at fault (if any)."""

    def __init__(self, message: str, status: int, ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.ids = ids or []


@dataclass(frozen=True)
class Column:
    """One company: its report, and its facts (None when the report was stored without them)."""

    job: Job
    facts: list[Fact] | None

    @property
    def report_url(self) -> str:
        return url_for("reports.show", job_id=self.job.id)


@dataclass(frozen=True)
class Comparison:
    columns: list[Column]

    @property
    def rows(self) -> list[tuple[str, str]]:
        """(key, label) of every fact, in the order shown: the recommendation first."""
        return list(FACT_FIELDS)

    @property
    def ids(self) -> list[str]:
        return [column.job.id for column in self.columns]

    def cell(self, column: Column, key: str) -> Fact | None:
        if column.facts is None:
            return None
        return next(fact for fact in column.facts if fact.key == key)


def requested_ids() -> list[str]:
    """The ids of `?ids=a,b&ids=c`, trimmed, in the order given, each once."""
    ids: list[str] = []
    for value in request.args.getlist("ids"):
        for part in value.split(","):
            part = part.strip()
            if part and part not in ids:
                ids.append(part)
    return ids


def build_comparison(ids: list[str]) -> Comparison:
    """The comparison of `ids` for the current user, or `NotComparable`."""
    limit = current_app.extensions["settings"].compare_max
    if len(ids) < MIN_COMPARED:
        raise NotComparable(
            f"Choose at least {MIN_COMPARED} reports to compare (got {len(ids)}): tick them on the Reports page.", 400
        )
    if len(ids) > limit:
        raise NotComparable(f"A comparison holds at most {limit} reports (got {len(ids)}).", 400)
    found = {job_id: jobs().get(job_id[:64], current_user) for job_id in ids}
    unknown = [job_id for job_id, job in found.items() if job is None]
    if unknown:
        raise NotComparable(f"No report with the id{'s' if len(unknown) > 1 else ''} {_listed(unknown)}.", 404, unknown)
    unfinished = [job_id for job_id, job in found.items() if job.state != JobState.SUCCESS or job.report_md is None]
    if unfinished:
        raise NotComparable(
            f"Only finished reports can be compared; not finished: {_listed(unfinished)}.", 409, unfinished
        )
    return Comparison([Column(job, load_facts(job.facts)) for job in found.values()])


def _listed(ids: list[str]) -> str:
    return ", ".join(repr(job_id[:64]) for job_id in ids)


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "facts": [{"key": key, "label": label} for key, label in comparison.rows],
        "companies": [
            {
                "job_id": column.job.id,
                "startup": column.job.startup,
                "report_url": url_for("reports.show", job_id=column.job.id, _external=True),
                "finished_at": _iso(column.job.finished_at),
                "facts_kept": column.facts is not None,
                "facts": [fact.to_dict() for fact in column.facts] if column.facts is not None else None,
            }
            for column in comparison.columns
        ],
    }


@bp.get("/compare")
def page() -> tuple[str, int]:
    ids = requested_ids()
    try:
        comparison = build_comparison(ids)
    except NotComparable as exc:
        return render_template("compare/index.html", comparison=None, error=str(exc)), exc.status
    query = ",".join(comparison.ids)
    return render_template("compare/index.html", comparison=comparison, error="", query=query), 200


@bp.get("/api/compare")
def api() -> tuple[Response, int]:
    try:
        comparison = build_comparison(requested_ids())
    except NotComparable as exc:
        return error_response(exc.status, str(exc), ids=exc.ids)
    return jsonify(comparison_json(comparison)), 200


def _download(
    make: Callable[[dict[str, Any]], bytes], mimetype: str, extension: str
) -> Response | tuple[Response, int]:
    try:
        comparison = build_comparison(requested_ids())
    except NotComparable as exc:
        return error_response(exc.status, str(exc), ids=exc.ids)
    data = make(comparison_json(comparison))
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="comparison.{extension}"'
    return response


@bp.get("/compare.csv")
def csv_download() -> Response | tuple[Response, int]:
    return _download(comparison_csv, "text/csv", "csv")


@bp.get("/compare.xlsx")
def xlsx_download() -> Response | tuple[Response, int]:
    return _download(comparison_xlsx, XLSX_MIMETYPE, "xlsx")
