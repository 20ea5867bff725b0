"""Errors as JSON: every API failure, including Flask's own 404, 405 and 413, is
`{"error": "..."}` with the right status code, never an HTML page and never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)

MESSAGES = {
    404: "Not found.",
    405: "Method not allowed for this URL.",
    413: "The request body is too large.",
    415: "Unsupported media type: send JSON with Content-Type: application/json.",
}


def error_response(status: int, message: str, **extra: object) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        response, status = error_response(status, MESSAGES.get(status, exc.description or exc.name))
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> tuple[Response, int]:
        if isinstance(exc, HTTPException):
            return handle_http_error(exc)
        logger.exception("unhandled error", exc_info=exc)
        return error_response(
            InternalServerError.code, "Internal error: the request was not completed. Try again shortly."
        )
