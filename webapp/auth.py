"""Who may use the app: Flask-Login for analysts' sessions and scripts' bearer tokens, Flask-WTF's
CSRF check on every form and htmx request that rides on the session cookie, and the security
headers on every answer.

Only the log-in page, static files and /healthz are open: without a session or a token the API
answers 401 JSON, pages redirect to the log-in page, htmx requests get a 401 with `HX-Redirect`.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Request, Response, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError

from webapp.accounts import Analyst, normalise_username
from webapp.errors import error_page, error_response, wants_html
from webapp.extensions import accounts, csrf, login_manager

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

OPEN_ENDPOINTS = frozenset({"auth.login", "static", "api.healthz"})
CSRF_FAILED = "The form had expired or came from elsewhere (CSRF check failed). Reload the page and try again."

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


@login_manager.user_loader
def load_user(session_id: str) -> Analyst | None:
    return accounts().user_for_session(session_id)


@login_manager.request_loader
def load_user_from_bearer_token(request: Request) -> Analyst | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    setting = current_app.extensions["settings"].api_token
    return accounts().user_for_token(token.strip(), setting.get_secret_value() if setting else None)


@bp.before_app_request
def require_login() -> ResponseReturnValue | None:
    """`login_required` for every endpoint but OPEN_ENDPOINTS, then the CSRF check for what rides on
    the session cookie (a bearer token is never sent by a browser on its own, so it needs none)."""
    if request.endpoint not in OPEN_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()
    if request.method in current_app.config["WTF_CSRF_METHODS"] and not getattr(current_user, "by_token", False):
        csrf.protect()
    return None


@login_manager.unauthorized_handler
def unauthenticated() -> ResponseReturnValue:
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request") == "true":
        response, _ = error_response(401, "Your session has ended: log in again.")
        response.headers["HX-Redirect"] = login_url
        return response, 401
    if wants_html():
        return redirect(login_url)
    return error_response(401, "Authentication required: send Authorization: Bearer <token>, or log in.")


@bp.app_errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
    logger.info("CSRF check failed: %s", exc.description)
    return error_page(403, CSRF_FAILED) if wants_html() else error_response(403, CSRF_FAILED)


@bp.after_app_request
def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The log-in form; POSTs are limited per client address (LOGIN_ATTEMPTS_PER_MINUTE, create_app)."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/login.html", next_url=next_url, error="")
    user = accounts().authenticate(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return render_template("auth/login.html", next_url=next_url, error="Wrong username or password."), 401
    start_session(accounts().analyst(user))
    return redirect(next_url, 303)


def start_session(user: Analyst) -> None:
    """A new log-in session: nothing from before carries over, the CSRF token included."""
    session.clear()
    login_user(user)
    session.permanent = True


def login_key() -> str:
    """The per-account budget of failed log-ins (create_app's `limit_requests`): the username as
    accounts compare it, so guesses spread over many addresses still count against one account."""
    return "account:" + normalise_username(request.form.get("username", ""))


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(exc: RateLimitExceeded) -> ResponseReturnValue:
    logger.warning(
        "log-in refused, too many failed attempts for the %s: username %r from %s",
        "account" if exc.limit.key_func is login_key else "address",
        normalise_username(request.form.get("username", "")),
        request.remote_addr,
    )
    next_url = _safe_next(request.values.get("next"))
    return render_template("auth/login.html", next_url=next_url, error=exc.description), 429


@bp.post("/logout")
def logout() -> Response:
    """Ends every session of the user, not only this browser's: a copied cookie stops working too."""
    if current_user.is_authenticated and not current_user.by_token:
        accounts().end_sessions(current_user.id)
    logout_user()
    return redirect(url_for("auth.login"), 303)
