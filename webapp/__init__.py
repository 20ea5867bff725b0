"""The web side of Startup Reports: the analysts' dashboard, the report pages and the JSON API.

`create_app()` builds everything from a `Settings` object; nothing is read at import time.
Run it with `gunicorn 'webapp:create_app()'` (see run_api.sh).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

import redis
from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from htmx_flask import Htmx
from werkzeug.middleware.proxy_fix import ProxyFix

from config import PROJECT_ROOT, Settings
from webapp import (
    account_page,
    api,
    auth,
    commands,
    companies,
    company_api,
    compare,
    continuing,
    dashboard,
    errors,
    estimates,
    report_api,
    reports,
    watches,
)
from webapp.accounts import Accounts
from webapp.extensions import csrf, login_manager
from worker.celery_setup import create_celery
from worker.jobs import JobService
from worker.log_context import current_job
from worker.migrate import require_current
from worker.store import JobStore

MAX_REQUEST_BYTES = 256 * 1024
UPLOAD_ENDPOINTS = frozenset({"api.generate", "dashboard.submit"})


def secret_key(settings: Settings) -> str:
    """SECRET_KEY, or a random key made once and kept (mode 600) in the data directory."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written in full to a private file, then linked into place: gunicorn's processes start
        # together, and none of them may ever read a half-written (empty) key.
        draft = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)  # fails if another process got there first: theirs wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind the HTTPS proxy that TRUST_PROXY names, the cookie travels over HTTPS only.
        SESSION_COOKIE_SECURE=settings.trust_proxy,
        # auth.require_login runs the CSRF check, for requests that ride on the session cookie only.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # a page's token is good as long as its session
    )
    app.json.ensure_ascii = False  # names like „KG“ come back as written, not as \u escapes
    app.json.sort_keys = False
    if settings.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    Htmx(app)

    store = JobStore(settings.database_url)
    require_current(store.engine)  # the schema is migrated before start (./run.sh), never here
    celery = create_celery(settings)
    app.extensions["settings"] = settings
    app.extensions["jobs"] = JobService(store, celery, private_reports=settings.private_reports)
    app.extensions["redis"] = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
    app.extensions["accounts"] = accounts = Accounts(store)
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    written = accounts.ensure_admin(admin_password, Path(settings.data_dir))
    if written:
        logging.getLogger(__name__).warning("created user admin; its password is in %s", written)

    @app.context_processor
    def page_globals() -> dict[str, object]:
        return {"flower_url": settings.flower_link, "upload_max_files": settings.upload_max_files}

    @app.before_request
    def name_the_job() -> None:
        """A request about one job names it in every log line it writes (`worker.log_context`),
        until the request ends: the thread serves other requests next."""
        job_id = (request.view_args or {}).get("job_id")
        if job_id:
            g.job_log_token = current_job.set(str(job_id)[:36])

    @app.teardown_request
    def forget_the_job(_: BaseException | None) -> None:
        token = g.pop("job_log_token", None)
        if token is not None:
            current_job.reset(token)

    @app.before_request
    def allow_uploads() -> None:
        """Only a form that uploads a document may be larger than `MAX_REQUEST_BYTES`."""
        if request.mimetype == "multipart/form-data" and request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = settings.upload_max_bytes * settings.upload_max_files + MAX_REQUEST_BYTES

    login_manager.init_app(app)
    csrf.init_app(app)
    errors.register(app)
    commands.register(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(account_page.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(companies.bp)
    app.register_blueprint(company_api.bp)
    app.register_blueprint(report_api.bp)
    app.register_blueprint(watches.bp)
    app.register_blueprint(compare.bp)
    app.register_blueprint(continuing.bp)
    app.register_blueprint(estimates.bp)
    limit_requests(app, settings)
    logging.getLogger(__name__).info("Startup Reports ready (database %s)", store.engine.url)
    return app


def limit_requests(app: Flask, settings: Settings) -> None:
    """Flask-Limiter, counting in the broker's Redis so that every API process shares the limits.
    Made per app (its storage is), so its `@limiter.limit` decorators are applied to the views here.
    With Redis down, requests go through: a submission then fails with the queue's own clear 503."""
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.broker_url,
        storage_options={"connection_pool": app.extensions["redis"].connection_pool},
        strategy="moving-window",  # a refused request uses up nothing
        key_prefix="startup-reports",
        swallow_errors=True,
    )

    @limiter.request_filter
    def reads_are_not_limited() -> bool:
        """Only POSTs are limited (submissions, log-ins): a read skips the limiter's search for its
        limits, a part of every status poll's CPU (bench/RESULTS.md, "Issue 14's latency figures")."""
        return request.method in ("GET", "HEAD")

    submit_rate = f"{settings.submit_rate_per_minute}/minute"
    per_user = {
        "scope": "submit",  # one budget for the API and the dashboard
        "key_func": lambda: current_user.username,
        # Checked before the view with what it asks for, counted after it with what it accepted
        # (`g.submitted`, the new jobs): bad input, the live-jobs cap, Redis down, a job joined or an
        # Idempotency-Key repeated cost nothing.
        "deduct_when": lambda _response: g.get("submitted", 0) > 0,
        "error_message": f"Too many submissions: at most {settings.submit_rate_per_minute} reports a minute "
        "per user. Wait a minute, then submit again.",
    }
    limits = {
        "api.generate": limiter.shared_limit(submit_rate, **per_user, cost=lambda: g.get("submitted", 1)),
        "dashboard.submit": limiter.shared_limit(
            submit_rate, **per_user, cost=lambda: g.get("submitted") or dashboard.batch_size()
        ),
    }
    failed_log_ins = {
        "methods": ["POST"],
        "deduct_when": lambda response: response.status_code == 401,  # failed log-ins only
    }
    login_limits = [
        limiter.limit(
            f"{settings.login_attempts_per_minute}/minute",
            **failed_log_ins,
            error_message="Too many failed log-ins from your address: wait a minute, then try again.",
        ),
        # The same budget per account too, so that guesses spread over many addresses are held back.
        limiter.limit(
            f"{settings.login_attempts_per_minute}/minute",
            **failed_log_ins,
            key_func=auth.login_key,
            error_message="Too many failed log-ins for this account: wait a minute, then try again.",
        ),
    ]
    for endpoint, limit in [*limits.items(), *(("auth.login", limit) for limit in login_limits)]:
        app.view_functions[endpoint] = limit(app.view_functions[endpoint])

    @app.after_request
    def retry_after(response: Response) -> Response:
        """`Retry-After` on the answers a limit refused, only: Flask-Limiter's own headers would cost
        another Redis call on every submission, and put a `Retry-After` on accepted ones too."""
        refused_by = limiter.current_limit
        if response.status_code == 429 and refused_by is not None and refused_by.breached:
            response.headers["Retry-After"] = str(max(1, int(refused_by.reset_at - time.time())))
        return response


def warm_up(app: Flask, threads: int = 1) -> float:
    """Connect to the database and the broker (a connection for each of the process's `threads`)
    and compile the hot queries, before the first request: run by each gunicorn process as it
    starts (webapp/gunicorn_config.py), so that the first submissions cost what the next ones do
    (bench/RESULTS.md). Returns the seconds it took.

    Best effort: with Redis or the database down the process still serves, and its first requests
    connect (or answer with their usual error) as they would have anyway."""
    started = time.monotonic()
    api_token = app.extensions["settings"].api_token
    api_token = api_token.get_secret_value() if api_token else None
    steps = {
        "the accounts' queries": lambda: app.extensions["accounts"].warm_up(api_token),
        "the jobs' queries and the broker": lambda: app.extensions["jobs"].warm_up(connections=threads),
        "the rate limiter's Redis": app.extensions["redis"].ping,
    }
    for what, step in steps.items():
        try:
            step()
        except Exception as exc:
            logging.getLogger(__name__).warning("warm-up of %s failed, the first request will retry: %s", what, exc)
    return time.monotonic() - started
