"""The web side of Startup Reports: the JSON API (and, beside it, the analysts' pages).

`create_app()` builds everything from a `Settings` object; nothing is read at import time.
Run it with `gunicorn 'webapp:create_app()'` (see run_api.sh).
"""

from __future__ import annotations

import logging

import redis
from flask import Flask

from config import PROJECT_ROOT, Settings
from webapp import api, errors, reports
from worker.celery_setup import create_celery
from worker.jobs import JobService
from worker.store import JobStore

MAX_REQUEST_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, JSON_SORT_KEYS=False)
    app.json.ensure_ascii = False  # names like „KG“ come back as written, not as \u escapes
    app.json.sort_keys = False

    store = JobStore(settings.database_url)
    store.create_schema()
    celery = create_celery(settings)
    app.extensions["settings"] = settings
    app.extensions["jobs"] = JobService(store, celery)
    app.extensions["redis"] = redis.Redis.from_url(
        settings.broker_url, socket_connect_timeout=2, socket_timeout=2
    )

    errors.register(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(reports.bp)
    logging.getLogger(__name__).info("Startup Reports API ready (database %s)", store.engine.url)
    return app
