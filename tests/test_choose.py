"""A job that asks which company its name means, through the web app: what /status and the card
show, and the answer (JSON from a script, a button or a typed website on the card) that queues it
again; `on_ambiguous` on POST /generate. How the worker decides to ask is in tests/test_identity.py."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import RedisServer, log_in, store_of
from worker.models import JobState

CANDIDATES = [
    {"name": "Acme Robotics", "website": "https://acmerobotics.com", "snippet": "Picking arms for warehouses."},
    {"name": "Acme Robotics", "website": "https://acme-robotics.io", "snippet": "Robot vacuums <b>for</b> flats."},
]
HX = {"HX-Request": "true"}
PASSWORD = "a long enough password"


def asking(app: Flask, owner: str = "admin") -> str:
    """A job as the worker leaves it when the name is ambiguous."""
    store = store_of(app)
    job = store.create_job("Acme Robotics", owner)
    assert store.mark_needs_input(job.id, CANDIDATES)
    return job.id


def queued_ids(redis_server: RedisServer) -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in redis_server.client(0).lrange("celery", 0, -1)]


def test_status_lists_the_candidates_and_a_script_answers_with_json(
    api_client: FlaskClient, app: Flask, clean_redis: RedisServer
) -> None:
    job_id = asking(app)
    body = api_client.get(f"/status/{job_id}").get_json()
    assert body["state"] == "NEEDS_INPUT" and body["finished"] is False
    assert body["candidates"] == CANDIDATES and body["choose_url"] == f"/jobs/{job_id}/choose"

    answer = api_client.post(body["choose_url"], json={"website": "acme-robotics.io"})
    assert answer.status_code == 202 and answer.get_json()["state"] == "PENDING"
    job = store_of(app).get_job(job_id)
    assert (job.state, job.website, job.candidate_list) == (JobState.PENDING, "https://acme-robotics.io", [])
    assert queued_ids(clean_redis) == [job_id]  # queued again, under the job's own id

    again = api_client.post(body["choose_url"], json={"website": "acmerobotics.com"})
    assert again.status_code == 409 and "does not ask" in again.get_json()["error"]
    assert store_of(app).get_job(job_id).website == "https://acme-robotics.io" and len(queued_ids(clean_redis)) == 1


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "Choose one of the companies"),
        ({"website": "javascript:alert(1)"}, 400, "http or https"),
        ({"website": ["https://acme.io"]}, 400, "must be a string"),
    ],
)
def test_a_bad_answer_is_a_400_and_the_job_keeps_asking(
    api_client: FlaskClient, app: Flask, body: dict, status: int, words: str
) -> None:
    job_id = asking(app)
    answer = api_client.post(f"/jobs/{job_id}/choose", json=body)
    assert answer.status_code == status and words in answer.get_json()["error"]
    assert store_of(app).get_job(job_id).state == JobState.NEEDS_INPUT


def test_only_the_owner_or_an_admin_answers(app: Flask, api_client: FlaskClient) -> None:
    app.extensions["accounts"].create_user("bob", PASSWORD)
    bob = app.test_client()
    log_in(bob, "bob", PASSWORD)
    job_id = asking(app, owner="alice")
    refused = bob.post(f"/jobs/{job_id}/choose", json={"website": "acmerobotics.com"})
    assert refused.status_code == 403 and "or an admin" in refused.get_json()["error"]
    assert store_of(app).get_job(job_id).state == JobState.NEEDS_INPUT
    assert 'name="website"' not in bob.get(f"/jobs/{job_id}/card").get_data(as_text=True)  # no buttons for bob
    assert (
        api_client.post("/jobs/00000000-0000-0000-0000-000000000000/choose", json={"website": "a.io"}).status_code
        == 404
    )
    assert api_client.post(f"/jobs/{job_id}/choose", json={"website": "acmerobotics.com"}).status_code == 202  # admin


def test_the_card_offers_the_candidates_stops_polling_and_a_button_resumes_the_job(
    app: Flask, clean_redis: RedisServer
) -> None:
    client = app.test_client()
    log_in(client)
    job_id = asking(app)
    card = client.get(f"/jobs/{job_id}/card").get_data(as_text=True)
    assert "Several companies are called Acme Robotics" in card and "Needs you" in card
    assert "hx-trigger" not in card  # no polling while it waits for an answer
    assert card.count('name="website" value="https://') == 2 and "Robot vacuums &lt;b&gt;for&lt;/b&gt; flats." in card
    assert re.search(r'<input id="website-[^"]+" name="website" type="text"', card)  # another company's website

    answered = client.post(f"/jobs/{job_id}/choose", data={"website": "https://acmerobotics.com"}, headers=HX)
    assert answered.status_code == 200 and 'data-state="PENDING"' in answered.get_data(as_text=True)
    assert queued_ids(clean_redis) == [job_id]

    other = asking(app)
    plain = client.post(f"/jobs/{other}/choose", data={"website": "acme.example"})  # no JavaScript
    assert plain.status_code == 303
    assert store_of(app).get_job(other).website == "https://acme.example"


@pytest.mark.parametrize(
    ("sent", "stored"), [({}, "fail"), ({"on_ambiguous": "ask"}, "ask"), ({"on_ambiguous": "best"}, "best")]
)
def test_generate_records_what_to_do_when_the_name_is_ambiguous(
    api_client: FlaskClient, app: Flask, sent: dict, stored: str
) -> None:
    response = api_client.post("/generate", json={"startup": "Acme Robotics", **sent})
    assert response.status_code == 202
    assert store_of(app).get_job(response.get_json()["job_id"]).on_ambiguous == stored


def test_an_unknown_on_ambiguous_is_a_400(api_client: FlaskClient, app: Flask) -> None:
    response = api_client.post("/generate", json={"startup": "Acme", "on_ambiguous": "guess"})
    assert (
        response.status_code == 400
        and response.get_json()["error"] == '"on_ambiguous" must be "ask", "best" or "fail".'
    )
    assert store_of(app).recent_jobs(5) == []


def test_the_dashboard_always_asks(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    assert client.post("/jobs", data={"startups": "Acme Robotics"}, headers=HX).status_code == 200
    [job] = store_of(app).recent_jobs(5)
    assert job.on_ambiguous == "ask"


def test_the_bulk_sender_stops_waiting_on_a_job_that_asks() -> None:
    """send_requests.py cannot answer for the analyst: a job that asks ends its wait."""
    import send_requests

    asking_body = {"state": "NEEDS_INPUT", "finished": False, "candidates": CANDIDATES, "choose_url": "/jobs/x/choose"}
    assert send_requests.is_finished(200, asking_body)
    assert not send_requests.is_finished(200, {"state": "PROGRESS", "finished": False})
