"""The cost cap in the web app, through Flask's test client with a real Redis and no worker: the
cap a submission asks for (API and form), spend against cap in /status, on the card and the report
page, and *Continue* of a partial report. The worker's side is in tests/test_spend.py and
tests/integration/test_cost_cap_e2e.py."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from tests.conftest import AUTH, RedisServer, csrf_token_of, free_port, log_in, make_settings, store_of
from webapp import create_app
from worker.pipeline import PLAN_STEP, SECTIONS, Checkpoint
from worker.store import JobStore

HX = {"HX-Request": "true"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A deployment that caps every report at $2 (MAX_COST_PER_REPORT_USD)."""
    return make_settings(**{**settings.model_dump(), "max_cost_per_report_usd": 2.0})


@pytest.fixture
def client(api_client: FlaskClient) -> FlaskClient:
    return api_client


def partial_job(store: JobStore, owner: str | None = "admin") -> str:
    """A job that stopped at a $0.50 cap after its plan and first section."""
    job = store.create_job("Capped Co", owner, max_cost_usd=0.5)
    store.mark_started(job.id, worker="w@h", attempt=1)
    for key in (PLAN_STEP, SECTIONS[0].key):
        store.save_checkpoint(job.id, Checkpoint(key=key, text="Text.", provider="openai", model="m"), 0.2)
    store.mark_succeeded(job.id, report_md="# Capped Co\n\n> **Partial report.**\n", provider="openai/m", partial=True)
    return job.id


def queued_ids(redis_server: RedisServer) -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in redis_server.client(0).lrange("celery", 0, -1)]


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        (5, "at most $2, the most a report may cost here (MAX_COST_PER_REPORT_USD)"),
        (0, "must be a positive number"),
        (-1, "must be a positive number"),
        ("lots", "must be a number of US dollars"),
        (True, "must be a positive number"),
        (float("nan"), "must be a positive number"),
        (10**400, "must be a positive number"),  # more digits than a float holds: was a 500
    ],
)
def test_a_cap_above_the_setting_or_not_a_positive_number_is_refused(
    client: FlaskClient, app: Flask, cap: object, message: str
) -> None:
    body = json.dumps({"startup": "Acme", "max_cost_usd": cap})  # NaN as Python's json writes it
    response = client.post("/generate", data=body, content_type="application/json")
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert store_of(app).recent_jobs(5) == []  # nothing queued


def test_the_job_stores_the_cap_it_asked_for_or_else_the_setting_s(client: FlaskClient, app: Flask) -> None:
    asked = client.post("/generate", json={"startup": "Acme", "max_cost_usd": 0.75}).get_json()
    default = client.post("/generate", json={"startup": "Other", "max_cost_usd": None}).get_json()
    store = store_of(app)
    assert store.get_job(asked["job_id"]).max_cost_usd == 0.75
    assert store.get_job(default["job_id"]).max_cost_usd == 2.0
    status = client.get(asked["status_url"]).get_json()
    assert (status["cost_usd"], status["max_cost_usd"], status["partial"]) == (0.0, 0.75, False)
    assert "unwritten" not in status


def test_status_of_a_partial_report_shows_spend_against_cap_and_what_is_missing(
    client: FlaskClient, app: Flask
) -> None:
    job_id = partial_job(store_of(app))
    status = client.get(f"/status/{job_id}").get_json()
    assert status["state"] == "SUCCESS" and status["partial"] is True
    assert (status["cost_usd"], status["max_cost_usd"]) == (0.4, 0.5)
    assert status["unwritten"] == ["Research plan", *[s.title for s in SECTIONS], "Summary"][2:]
    assert status["continue_url"] == f"/api/jobs/{job_id}/continue"
    listed = client.get("/api/jobs").get_json()["jobs"][0]
    assert listed["partial"] is True and listed["unwritten"] == status["unwritten"]


def test_continue_queues_the_same_job_under_a_higher_cap(
    client: FlaskClient, app: Flask, clean_redis: RedisServer
) -> None:
    store = store_of(app)
    job_id = partial_job(store)
    url = f"/api/jobs/{job_id}/continue"
    refusals = [
        ({"max_cost_usd": 3}, 400, "at most $2"),
        ({"max_cost_usd": 0.4}, 409, "above the $0.4000 this report has spent"),
        ({}, 400, "Give the new cap"),
    ]
    for body, status, message in refusals:
        response = client.post(url, json=body)
        assert response.status_code == status and message in response.get_json()["error"], response.get_json()
    assert client.post(url, data="1.5", content_type="text/plain").status_code == 400
    assert client.post("/api/jobs/not-a-job/continue", json={"max_cost_usd": 1}).status_code == 404
    assert queued_ids(clean_redis) == []

    response = client.post(url, json={"max_cost_usd": 1.5})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["job_id"] == job_id and body["state"] == "PENDING" and body["max_cost_usd"] == 1.5
    assert queued_ids(clean_redis) == [job_id]  # the same job, from its checkpoints
    job = store.get_job(job_id)
    assert job.report_md.startswith("# Capped Co") and set(store.load_checkpoints(job_id)) == {
        PLAN_STEP,
        SECTIONS[0].key,
    }
    # Twice is refused: it is no longer a partial report.
    again = client.post(url, json={"max_cost_usd": 1.8})
    assert again.status_code == 409 and "Only a report that stopped at its cost cap" in again.get_json()["error"]

    # A continuation that fails (a provider down) keeps its partial report, and may be continued again.
    store.mark_failed(job_id, error="OpenAI could not be reached.")
    failed = client.get(f"/status/{job_id}").get_json()
    assert failed["state"] == "FAILURE" and failed["partial"] is True and "continue_url" in failed
    assert client.post(url, json={"max_cost_usd": 1.8}).status_code == 202
    assert store.get_job(job_id).report_md.startswith("# Capped Co")


def test_two_continue_presses_at_once_queue_the_job_once(app: Flask, clean_redis: RedisServer) -> None:
    job_id = partial_job(store_of(app))
    start = threading.Barrier(4)

    def press(_: int) -> int:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
        start.wait()
        return client.post(f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 1.5}).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(press, range(4)))
    assert statuses == [202, 409, 409, 409]
    assert queued_ids(clean_redis) == [job_id]


def test_a_cancelled_continuation_keeps_its_partial_report_readable(
    client: FlaskClient, app: Flask, clean_redis: RedisServer
) -> None:
    """Cancelling a continuation used to leave a cancelled job, whose page shows no report: the
    partial report was stored but out of reach, and could not be continued either."""
    store = store_of(app)
    job_id = partial_job(store)
    assert client.post(f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 1.5}).status_code == 202
    cancelled = client.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.get_json()
    status = client.get(f"/status/{job_id}").get_json()
    assert (status["state"], status["partial"], status["cancelled_by"]) == ("SUCCESS", True, "admin")
    assert "continue_url" not in status  # its tasks' ids are revoked: a continuation would never run
    page = client.get(f"/reports/{job_id}").get_data(as_text=True)
    assert "Partial report" in page and "continuing it was cancelled by admin" in page
    assert f"/jobs/{job_id}/continue" not in page
    again = client.post(f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 1.8})
    assert again.status_code == 409 and "cancelled by admin" in again.get_json()["error"]
    assert client.get(f"/reports/{job_id}.md").status_code == 200
    # A job that is not a partial report is cancelled as before.
    other = client.post("/generate", json={"startup": "Other Co"}).get_json()["job_id"]
    assert client.post(f"/api/jobs/{other}/cancel").status_code == 200
    assert store.get_job(other).state == "REVOKED"


def test_a_continue_that_cannot_be_queued_leaves_the_partial_report_as_it_was(
    settings: Settings, database_url: str
) -> None:
    app = create_app(make_settings(**{**settings.model_dump(), "redis_url": f"redis://127.0.0.1:{free_port()}"}))
    store = store_of(app)
    job = store.get_job(partial_job(store))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    response = client.post(f"/api/jobs/{job.id}/continue", json={"max_cost_usd": 1.0})
    assert response.status_code == 503 and "Redis" in response.get_json()["error"]
    after = store.get_job(job.id)
    assert (after.state, after.partial, after.max_cost_usd, after.report_md) == ("SUCCESS", True, 0.5, job.report_md)
    assert after.finished_at == job.finished_at


def test_only_the_owner_or_an_admin_may_continue(app: Flask) -> None:
    accounts = app.extensions["accounts"]
    for name in ("alice", "bob"):
        accounts.create_user(name, "a-long-enough-password")
    job_id = partial_job(store_of(app), owner="alice")
    _, secret = accounts.create_token("bob", "tests")
    bob = app.test_client()
    response = bob.post(
        f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 1.0}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 403 and "may continue it" in response.get_json()["error"]


def test_with_private_reports_another_user_s_partial_report_is_unknown_to_continue(settings: Settings) -> None:
    app = create_app(make_settings(**{**settings.model_dump(), "private_reports": True}))
    accounts = app.extensions["accounts"]
    for name in ("alice", "bob"):
        accounts.create_user(name, "a-long-enough-password")
    job_id = partial_job(store_of(app), owner="alice")
    bob = app.test_client()
    log_in(bob, "bob", "a-long-enough-password")
    api = bob.post(f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 1.0})
    assert api.status_code == 404 and "Capped Co" not in api.get_data(as_text=True)
    token = csrf_token_of(bob.get("/").get_data(as_text=True))
    form = bob.post(f"/jobs/{job_id}/continue", data={"csrf_token": token, "max_cost_usd": "1.0"})
    assert form.status_code == 404 and "Capped Co" not in form.get_data(as_text=True)
    assert store_of(app).get_job(job_id).state == "SUCCESS"  # not continued
    app.extensions["jobs"].workers.stop()


def test_the_form_takes_a_cap_and_the_card_and_page_show_spend_and_continue(
    app: Flask, clean_redis: RedisServer
) -> None:
    browser = app.test_client()
    log_in(browser)
    store = store_of(app)
    page = browser.get("/").get_data(as_text=True)
    assert 'name="max_cost_usd"' in page and "at most 2.0" in page
    token = csrf_token_of(page)
    refused = browser.post("/jobs", data={"startups": "Acme", "max_cost_usd": "9", "csrf_token": token})
    assert refused.status_code == 400 and "at most $2" in refused.get_data(as_text=True)
    assert store.recent_jobs(5) == []
    browser.post("/jobs", data={"startups": "Acme", "max_cost_usd": "0.25", "csrf_token": token})
    assert store.recent_jobs(1)[0].max_cost_usd == 0.25

    job_id = partial_job(store)
    dashboard = browser.get("/").get_data(as_text=True)
    card = dashboard[dashboard.index(f'id="job-{job_id}"') :]
    card = card[: card.index("</article>")]
    assert "Spent $0.4000 of a $0.50 cap" in card and "stopped at its cost cap" in card
    assert "Not written: Problem &amp; customer" in card and f"/jobs/{job_id}/continue" in card
    report_page = browser.get(f"/reports/{job_id}").get_data(as_text=True)
    assert "Spent $0.4000 of a $0.50 cap" in report_page and f'action="/jobs/{job_id}/continue"' in report_page

    too_low = browser.post(f"/jobs/{job_id}/continue", data={"max_cost_usd": "0.3", "csrf_token": token}, headers=HX)
    assert too_low.status_code == 200 and "above the $0.4000" in too_low.get_data(as_text=True)
    continued = browser.post(f"/jobs/{job_id}/continue", data={"max_cost_usd": "1", "csrf_token": token}, headers=HX)
    assert continued.status_code == 200 and 'data-state="PENDING"' in continued.get_data(as_text=True)
    assert job_id in queued_ids(clean_redis)
