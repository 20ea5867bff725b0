"""Errors for people and for scripts: the JSON API answers `{"error": "..."}` with the right
status code (404, 405 and 413 included), the pages answer an HTML page that says what to do.
Never a stack trace. Also the refusals of a submission that the API and the dashboard share."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.extensions import jobs

logger = logging.getLogger(__name__)

QUEUE_DOWN = "The job queue (Redis) is unreachable, so nothing was queued. Try again in a minute."

API_PREFIXES = ("/generate", "/estimate", "/status/", "/api/", "/healthz")
MESSAGES = {
    400: "The request could not be understood.",
    404: "Not found.",
    405: "Method not allowed for this URL.",
    413: "The request body is too large.",
    415: "Unsupported media type: send JSON with Content-Type: application/json.",
}


def too_many_live_jobs(user: str, count: int) -> str | None:
    """Why `user` may not queue `count` more reports now (MAX_LIVE_JOBS_PER_USER), or None. A cap
    on what is queued or running at once, not a rate, so a count in SQL rather than Flask-Limiter."""
    live = jobs().store.count_live(user)
    limit = current_app.extensions["settings"].max_live_jobs_per_user
    if live + count <= limit:
        return None
    return (
        f"You have {live} reports queued or running; the limit is {limit} at once. "
        "Wait for some to finish (or cancel them), then submit again."
    )


def error_response(status: int, message: str, **extra: object) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def wants_html() -> bool:
    """Pages get HTML errors, the API and anything that does not ask for HTML gets JSON."""
    if request.path.startswith(API_PREFIXES) or request.path.endswith((".md", ".docx", ".csv", ".xlsx")):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("errors/error.html", status=status, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> tuple[Response | str, int]:
        status = exc.code or 500
        message = MESSAGES.get(status, exc.description or exc.name)
        if wants_html():
            return error_page(status, message)
        response, status = error_response(status, message)
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> tuple[Response | str, int]:
        if isinstance(exc, HTTPException):
            return handle_http_error(exc)
        logger.exception("unhandled error", exc_info=exc)
        message = "Internal error: the request was not completed. Try again shortly."
        if wants_html():
            return error_page(InternalServerError.code, message)
        return error_response(InternalServerError.code, message)
