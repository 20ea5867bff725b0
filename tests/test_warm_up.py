"""Each API process connects and compiles its hot queries before its first request
(`webapp.warm_up`, run by gunicorn through webapp/gunicorn_config.py)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import kombu.pools
import pytest
from flask import Flask
from sqlalchemy import event

from tests.conftest import ADMIN_PASSWORD, API_TOKEN, AUTH, make_settings
from webapp import create_app, warm_up


def broker_connected(app: Flask) -> bool:
    with app.extensions["jobs"].celery.producer_or_acquire() as producer:
        return bool(producer.connection.connected)


def test_warm_up_opens_the_broker_and_database_connections_and_writes_nothing(app: Flask) -> None:
    store = app.extensions["jobs"].store
    store.dispose()  # create_app's own queries (schema, admin) left a pooled connection behind
    kombu.pools.reset()  # producer pools are per broker URL and process: earlier tests' are open
    assert not broker_connected(app)
    assert store.engine.pool.checkedin() == 0

    warm_up(app)

    assert broker_connected(app)
    assert store.engine.pool.checkedin() >= 1
    assert store.recent_jobs() == []  # the insert it compiled was rolled back
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    response = app.test_client().post("/generate", json={"startup": "Acme"}, headers=AUTH)
    assert response.status_code == 202, response.get_json()
    # API_TOKEN's user was read by the warm-up: the first submission reads no account.
    assert statements and not [s for s in statements if "users" in s or "api_tokens" in s], statements


def test_warm_up_with_redis_down_logs_what_failed_and_the_app_still_answers(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(  # redis_url: a closed port (make_settings' default)
        database_url=database_url,
        data_dir=tmp_path / "data",
        llm_provider="offline",
        admin_password=ADMIN_PASSWORD,
        api_token=API_TOKEN,
    )
    app = create_app(settings)
    with caplog.at_level(logging.WARNING, logger="webapp"):
        warm_up(app)
    failed = [r.getMessage() for r in caplog.records if "warm-up of" in r.getMessage()]
    assert any("the broker" in message and "Connection refused" in message for message in failed), failed
    assert not any("accounts" in message for message in failed), failed  # the database was warmed
    response = app.test_client().post("/generate", json={"startup": "Acme"}, headers=AUTH)
    assert response.status_code == 503
    assert "unreachable" in response.get_json()["error"]


def test_warm_up_with_more_threads_than_the_broker_pool_holds_still_returns(app: Flask) -> None:
    """API_THREADS may be up to 64; the producer pool holds 10 (Celery's default): the warm-up
    opens 10 and returns, instead of waiting forever for an 11th it holds itself."""
    done = threading.Event()
    thread = threading.Thread(target=lambda: (warm_up(app, threads=64), done.set()), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert done.is_set(), "the warm-up never returned"
    assert broker_connected(app)
