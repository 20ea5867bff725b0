"""Accessors for the services `create_app` keeps in `app.extensions`, shared by the blueprints."""

from __future__ import annotations

from flask import current_app

from webapp.accounts import Accounts
from worker.jobs import JobService


def jobs() -> JobService:
    return current_app.extensions["jobs"]


def accounts() -> Accounts:
    return current_app.extensions["accounts"]
