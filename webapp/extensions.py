"""The Flask extensions the blueprints share, made once here and bound to each app in
`create_app`, and accessors for the services `create_app` keeps in `app.extensions`."""

from __future__ import annotations

from flask import current_app
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from webapp.accounts import Accounts
from worker.jobs import JobService

login_manager = LoginManager()
csrf = CSRFProtect()


def jobs() -> JobService:
    return current_app.extensions["jobs"]


def accounts() -> Accounts:
    return current_app.extensions["accounts"]
