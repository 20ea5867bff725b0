"""Submitting the same thing twice, and cancelling: through the API and the cards."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AUTH, RedisServer, log_in, store_of
from worker.models import Job
from worker.pipeline import Progress


def test_the_same_idempotency_key_returns_the_same_job(
    api_client: FlaskClient, app: Flask, clean_redis: RedisServer
) -> None:
    first = api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "batch-7/acme"})
    assert first.status_code == 202
    store_of(app).mark_succeeded(first.get_json()["job_id"], report_md="# R", provider="p")
    again = api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "batch-7/acme"})
    assert again.status_code == 200
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert again.get_json()["status"] == "duplicate" and again.get_json()["state"] == "SUCCESS"
    assert clean_redis.client().llen("celery") == 1  # queued (and paid for) once
    other = api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "batch-8/acme"})
    assert other.status_code == 202 and other.get_json()["job_id"] != first.get_json()["job_id"]
    too_long = api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 400


def test_the_same_startup_joins_its_live_job_unless_fresh(api_client: FlaskClient, app: Flask) -> None:
    first = api_client.post("/generate", json={"startup": "Acme Robotics"}).get_json()
    joined = api_client.post("/generate", json={"startup": "  acme   ROBOTICS "})
    assert joined.status_code == 200
    assert joined.get_json()["job_id"] == first["job_id"] and joined.get_json()["status"] == "joined"
    fresh = api_client.post("/generate", json={"startup": "Acme Robotics", "fresh": True})
    assert fresh.status_code == 202 and fresh.get_json()["job_id"] != first["job_id"]
    assert api_client.post("/generate", json={"startup": "Acme", "fresh": "yes"}).status_code == 400
    # A finished job is not joined: asking again makes a new report.
    store_of(app).mark_succeeded(first["job_id"], report_md="# R", provider="p")
    store_of(app).mark_succeeded(fresh.get_json()["job_id"], report_md="# R", provider="p")
    assert api_client.post("/generate", json={"startup": "Acme Robotics"}).status_code == 202


def test_the_dashboard_says_which_names_joined_a_live_job(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    client.post("/jobs", data={"startups": "Acme"})
    body = client.post("/jobs", data={"startups": "Acme\nZeta"}, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Queued 1 report." in body and "Already being written, so not started again: Acme" in body
    assert [j.startup for j in store_of(app).recent_jobs(10)] == ["Zeta", "Acme"]
    client.post("/jobs", data={"startups": "Acme", "fresh": "on"})
    assert [j.startup for j in store_of(app).recent_jobs(10)] == ["Acme", "Zeta", "Acme"]


def test_cancel_through_the_api_records_who_and_stops_the_job(api_client: FlaskClient, app: Flask) -> None:
    job_id = api_client.post("/generate", json={"startup": "Acme"}).get_json()["job_id"]
    response = api_client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200
    data = response.get_json()
    assert data["state"] == "REVOKED" and data["cancelled_by"] == "admin" and data["error"] == "Cancelled by admin."
    # The worker's next progress report finds the job cancelled, so it stops before the next call.
    assert store_of(app).mark_progress(job_id, Progress(step=2, total=13, label="Snapshot")) is False
    assert store_of(app).mark_succeeded(job_id, report_md="# late", provider="p") is False
    again = api_client.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already finished" in again.get_json()["error"]
    assert api_client.post("/api/jobs/00000000-0000-0000-0000-000000000000/cancel").status_code == 404


def test_cancel_from_the_card(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    job = store_of(app).create_job("Acme", "admin")
    page = client.get("/").get_data(as_text=True)
    assert f"/jobs/{job.id}/cancel" in page
    card = client.post(f"/jobs/{job.id}/cancel", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Cancelled by admin" in card and "hx-trigger" not in card and "/cancel" not in card


def test_the_loser_of_an_idempotency_key_race_answers_with_the_winners_job(
    api_client: FlaskClient, app: Flask, clean_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(app)
    body = {"startup": "Acme", "fresh": True}  # fresh: so that only the key can make it the same job
    winner = api_client.post("/generate", json=body, headers={"Idempotency-Key": "k1"}).get_json()
    # The loser looked the key up before the winner's row was there: its first look-up finds nothing.
    look_up = store.find_by_idempotency_key
    looked = []

    def too_early(user: str, key: str) -> Job | None:
        looked.append(key)
        return None if len(looked) == 1 else look_up(user, key)

    monkeypatch.setattr(store, "find_by_idempotency_key", too_early)
    loser = api_client.post("/generate", json=body, headers={"Idempotency-Key": "k1"})
    assert loser.status_code == 200 and loser.get_json()["status"] == "duplicate"
    assert loser.get_json()["job_id"] == winner["job_id"]
    assert len(looked) == 2 and len(store.recent_jobs(10)) == 1 and clean_redis.client().llen("celery") == 1


def test_twenty_simultaneous_submissions_with_one_key_make_one_job(app: Flask, clean_redis: RedisServer) -> None:
    app.extensions["settings"].submit_rate_per_minute = 1000
    store = store_of(app)
    start = threading.Barrier(20)

    def submit(_: int) -> tuple[int, str]:
        client = app.test_client()
        start.wait()
        response = client.post(
            "/generate", json={"startup": "Acme", "fresh": True}, headers={**AUTH, "Idempotency-Key": "import/42"}
        )
        return response.status_code, response.get_json()["job_id"]

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(submit, range(20)))
    assert {status for status, _ in answers} <= {200, 202}
    assert len({job_id for _, job_id in answers}) == 1
    assert len(store.recent_jobs(50)) == 1 and clean_redis.client().llen("celery") == 1
