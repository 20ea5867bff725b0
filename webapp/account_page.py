"""The account page: the user's API tokens and password (and what they spent this month, from
the template's context), for the user who is logged in."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user

from webapp.accounts import AccountError, Analyst
from webapp.errors import error_response
from webapp.extensions import accounts

bp = Blueprint("account", __name__)


def session_only(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """For what manages the account's credentials: only from a log-in session (with its CSRF
    check), never with a bearer token, so a leaked token cannot mint more or lock the owner out."""

    @wraps(view)
    def checked(*args: object, **kwargs: object) -> ResponseReturnValue:
        if current_user.by_token:
            return error_response(403, "Tokens and passwords are managed on the account page, not with a token.")
        return view(*args, **kwargs)

    return checked


@bp.get("/account")
def account() -> str:
    return render_template("auth/account.html", tokens=accounts().tokens_of(current_user.id), new_secret=None)


@bp.post("/account/tokens")
@session_only
def create_token() -> ResponseReturnValue:
    """The account page with the new secret on it, answered to the POST itself: the secret is
    shown this once and kept nowhere, never in the session cookie (signed, not encrypted)."""
    _, secret = accounts().create_token(current_user.username, request.form.get("name", ""))
    tokens = accounts().tokens_of(current_user.id)
    page = render_template("auth/account.html", tokens=tokens, new_secret=secret)
    return page, 201, {"Cache-Control": "no-store"}  # nor in the browser's cache


@bp.post("/account/tokens/<int:token_id>/revoke")
@session_only
def revoke_token(token_id: int) -> Response:
    if accounts().revoke_token(current_user.id, token_id):
        flash("Token revoked.")
    return redirect(url_for("account.account"), 303)


@bp.post("/account/password")
@session_only
def change_password() -> ResponseReturnValue:
    """A new password ends every session of the user; this browser gets a new one at once."""
    if accounts().authenticate(current_user.username, request.form.get("current", "")) is None:
        flash("The current password is wrong; nothing was changed.")
        return redirect(url_for("account.account"), 303)
    try:
        version = accounts().set_password(current_user.username, request.form.get("new", ""))
    except AccountError as exc:
        flash(str(exc))
    else:
        # This browser's session names the new version (its CSRF token stays: same user, same tabs).
        login_user(Analyst(current_user.id, current_user.username, session_version=version))
        flash("Password changed. Every other session of yours has been logged out.")
    return redirect(url_for("account.account"), 303)
