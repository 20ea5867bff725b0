"""Who may use the app: log-in sessions for analysts, bearer tokens for scripts, CSRF tokens on
every form and htmx request, and the security headers on every answer.

Every request passes `guard()` first. Without a valid session or token, the API answers 401 JSON
and pages redirect to the log-in page; only the log-in page, static files and /healthz are open.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from webapp.accounts import AccountError, Principal
from webapp.errors import error_page, error_response, wants_html
from webapp.extensions import accounts

bp = Blueprint("auth", __name__)

OPEN_ENDPOINTS = frozenset({"auth.login", "static", "api.healthz"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRFToken"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


def current_principal() -> Principal | None:
    return g.get("principal")


def csrf_token() -> str:
    """The session's CSRF token, made on first use (templates call this for forms and hx-headers)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


def _principal_from_request() -> Principal | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        setting = current_app.extensions["settings"].api_token
        return accounts().principal_for_token(header[7:].strip(), setting.get_secret_value() if setting else None)
    user_id = session.get("user_id")
    return accounts().principal_for_session(user_id) if isinstance(user_id, int) else None


def guard() -> Response | tuple[Response | str, int] | None:
    """Runs before every request: who is asking, may they, and did a form carry its CSRF token."""
    if request.endpoint in OPEN_ENDPOINTS and request.endpoint != "auth.login":
        g.principal = None  # static files and /healthz: nobody to look up
        return None
    g.principal = principal = _principal_from_request()
    if principal is None and request.endpoint != "auth.login":
        return _unauthenticated()
    # Forms and htmx requests that ride on the session cookie must carry its CSRF token.
    if request.method in UNSAFE_METHODS and (principal is None or principal.via == "session") and not _csrf_ok():
        message = "The form had expired or came from elsewhere (CSRF check failed). Reload the page and try again."
        return error_page(403, message) if wants_html() else error_response(403, message)
    return None


def _unauthenticated() -> Response | tuple[Response | str, int]:
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request") == "true":
        response, _ = error_response(401, "Your session has ended: log in again.")
        response.headers["HX-Redirect"] = login_url
        return response, 401
    if wants_html():
        return redirect(login_url)
    return error_response(401, "Authentication required: send Authorization: Bearer <token>, or log in.")


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Session cookies are `Secure` whenever the request came over HTTPS (behind a proxy, with
    TRUST_PROXY set), so the same deployment works on a laptop and behind TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not target:
        return url_for("dashboard.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/login.html", next_url=next_url, error=""), 200
    user = accounts().authenticate(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return render_template("auth/login.html", next_url=next_url, error="Wrong username or password."), 401
    session.clear()
    session["user_id"] = user.id
    session.permanent = True
    csrf_token()  # a fresh token for the new session
    return redirect(next_url, 303)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"), 303)


@bp.get("/account")
def account() -> str:
    principal = current_principal()
    tokens = accounts().tokens_of(principal.user_id) if principal else []
    return render_template("auth/account.html", tokens=tokens, new_secret=session.pop("new_token", None))


@bp.post("/account/tokens")
def create_token() -> Response:
    principal = current_principal()
    _, secret = accounts().create_token(principal.username, request.form.get("name", ""))
    # Shown once, on the next page, then gone from the session.
    session["new_token"] = secret
    return redirect(url_for("auth.account"), 303)


@bp.post("/account/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Response:
    if accounts().revoke_token(current_principal().user_id, token_id):
        flash("Token revoked.")
    return redirect(url_for("auth.account"), 303)


@bp.post("/account/password")
def change_password() -> Response | tuple[str, int]:
    principal = current_principal()
    if accounts().authenticate(principal.username, request.form.get("current", "")) is None:
        flash("The current password is wrong; nothing was changed.")
        return redirect(url_for("auth.account"), 303)
    try:
        accounts().set_password(principal.username, request.form.get("new", ""))
    except AccountError as exc:
        flash(str(exc))
    else:
        flash("Password changed.")
    return redirect(url_for("auth.account"), 303)
