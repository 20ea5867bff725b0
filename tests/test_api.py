"""The JSON API through Flask's test client, with a real Redis and no worker: validation, errors,
queueing, reading jobs. The end-to-end runs with a worker are in tests/integration/."""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from werkzeug.test import TestResponse

from config import PROJECT_ROOT
from tests.conftest import API_TOKEN, AUTH, RedisServer, free_port, make_settings, store_of
from tests.fakes.pdf_builder import minimal_pdf, shared_stream_bomb
from tests.fakes.search_server import PDF_SENTENCE
from webapp import create_app
from worker.pipeline import Progress


@pytest.fixture
def client(api_client: FlaskClient) -> FlaskClient:
    return api_client


def queued_messages(redis_server: RedisServer) -> list[dict]:
    return [json.loads(raw) for raw in redis_server.client(0).lrange("celery", 0, -1)]


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "Ünïcødé GmbH & Co. „KG“", "  TeslaAI  "])
def test_generate_queues_a_job_and_status_returns_the_name_intact(
    client: FlaskClient, app: Flask, clean_redis: RedisServer, name: str
) -> None:
    response = client.post("/generate", json={"startup": name})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued" and uuid.UUID(body["job_id"])
    assert response.headers["Location"] == f"/status/{body['job_id']}"

    status = client.get(f"/status/{body['job_id']}")
    assert status.status_code == 200
    data = status.get_json()
    assert data["startup"] == name.strip()
    assert data["state"] == "PENDING"
    assert data["created_at"].endswith("Z")
    # The raw bytes carry the name unescaped, as written.
    assert name.strip().encode() in status.data

    messages = queued_messages(clean_redis)
    assert [m["headers"]["id"] for m in messages] == [body["job_id"]]
    assert messages[0]["headers"]["task"] == "worker.tasks.generate_report"


BAD_BODIES = [
    ({"startup": ""}, "must not be empty"),
    ({"startup": "   "}, "must not be empty"),
    ({"startup": "x" * 201}, "at most 200"),
    ({"startup": 42}, "must be a string"),
    ({"startup": None}, "is required"),
    ({}, "is required"),
    ({"name": "Acme"}, "is required"),
    (["Acme"], "must be an object"),
    ({"startup": "line\nbreak"}, "control characters"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_json_bodies_get_a_400_with_a_clear_error(
    client: FlaskClient, app: Flask, body: object, message: str
) -> None:
    response = client.post("/generate", json=body)
    assert response.status_code == 400
    assert response.is_json and message in response.get_json()["error"]
    assert store_of(app).recent_jobs(10) == []


def test_exactly_200_characters_is_accepted(client: FlaskClient) -> None:
    assert client.post("/generate", json={"startup": "é" * 200}).status_code == 202


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        ("{not json", "application/json", "not valid JSON"),
        ("startup=Acme", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        ("Acme", "text/plain", "Content-Type: application/json"),
        ("", None, "Content-Type: application/json"),
    ],
)
def test_non_json_bodies_get_a_400_json_error(
    client: FlaskClient, app: Flask, data: str, content_type: str | None, message: str
) -> None:
    response = client.post("/generate", data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.is_json and message in response.get_json()["error"]
    assert store_of(app).recent_jobs(10) == []


def test_a_lone_surrogate_is_a_400(client: FlaskClient, app: Flask) -> None:
    response = client.post("/generate", data='{"startup": "Acme \\ud800"}', content_type="application/json")
    assert response.status_code == 400 and "valid Unicode" in response.get_json()["error"]
    assert store_of(app).recent_jobs(10) == []


def test_absurdly_nested_json_is_a_400(client: FlaskClient) -> None:
    response = client.post("/generate", data="[" * 30000, content_type="application/json")
    assert response.status_code == 400 and response.is_json


def test_oversized_body_is_a_413_json_error(client: FlaskClient) -> None:
    response = client.post("/generate", data="x" * 300_000, content_type="application/json")
    assert response.status_code == 413 and response.is_json


def test_wrong_method_and_unknown_url_are_json(client: FlaskClient) -> None:
    response = client.get("/generate")
    assert response.status_code == 405 and response.is_json
    assert "POST" in response.headers["Allow"]
    assert client.delete("/status/abc").status_code == 405
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.get_json() == {"error": "Not found."}


# A fixed id never issued: the suite's xdist workers must all collect the same test names.
@pytest.mark.parametrize("job_id", ["0b9c3c52-6f0e-4a8e-9d43-2f1f6a4f0c11", "not-a-uuid", "1' OR '1'='1"])
def test_unknown_job_is_a_404_json_error(client: FlaskClient, job_id: str) -> None:
    for url in (f"/status/{job_id}", f"/reports/{job_id}.md"):
        response = client.get(url)
        assert response.status_code == 404 and response.is_json
        assert "No job" in response.get_json()["error"]


def test_status_of_a_job_in_progress_and_done(client: FlaskClient, app: Flask) -> None:
    store = store_of(app)
    job = store.create_job("Acme")
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.mark_progress(job.id, Progress(step=5, total=13, label="Market size"))
    data = client.get(f"/status/{job.id}").get_json()
    assert data["state"] == "PROGRESS"
    assert data["progress"] == {"step": 5, "total": 13, "label": "Market size"}
    assert "result" not in data and "report_url" not in data
    assert client.get(f"/reports/{job.id}.md").status_code == 409

    store.mark_succeeded(job.id, report_md="# Acme: investment memo\n", provider="offline/demo")
    data = client.get(f"/status/{job.id}").get_json()
    assert data["state"] == "SUCCESS"
    assert data["result"] == "# Acme: investment memo\n"
    assert data["report_url"] == f"/reports/{job.id}"
    download = client.get(data["download_url"])
    assert download.status_code == 200 and download.mimetype == "text/markdown"
    assert download.headers["Content-Disposition"] == 'attachment; filename="acme-report.md"'
    assert download.data.decode() == "# Acme: investment memo\n"


def test_status_of_a_retrying_job_says_when(client: FlaskClient, app: Flask) -> None:
    from datetime import UTC, datetime, timedelta

    store = store_of(app)
    job = store.create_job("Acme")
    store.mark_started(job.id, worker="w@h", attempt=2)
    retry_at = datetime.now(UTC) + timedelta(seconds=30)
    store.mark_retry(job.id, error="The provider is overloaded.", retry_at=retry_at)
    data = client.get(f"/status/{job.id}").get_json()
    assert data["state"] == "RETRY" and data["error"] == "The provider is overloaded."
    assert data["retry"]["attempt"] == 2 and data["retry"]["max_retries"] == 3
    assert data["retry"]["at"].endswith("Z")


def test_recent_jobs_newest_first_with_limit(client: FlaskClient, app: Flask) -> None:
    ids = [client.post("/generate", json={"startup": f"S{i}"}).get_json()["job_id"] for i in range(4)]
    listed = client.get("/api/jobs?limit=3").get_json()["jobs"]
    assert [j["job_id"] for j in listed] == ids[::-1][:3]
    assert listed[0]["startup"] == "S3" and "result" not in listed[0]
    assert len(client.get("/api/jobs").get_json()["jobs"]) == 4
    for bad in ("0", "101", "-1", "abc", "", "²", "99999999999999999999"):
        response = client.get(f"/api/jobs?limit={bad}")
        assert response.status_code == 400 and "limit" in response.get_json()["error"]


def test_job_list_pages_back_through_the_whole_history(client: FlaskClient, app: Flask) -> None:
    store = store_of(app)
    ids = [store.create_job(f"History {i}").id for i in range(7)]
    # Two jobs made in the same instant: the id orders them, so neither is skipped or repeated.
    with store.engine.begin() as connection:
        same = connection.execute(text("SELECT created_at FROM jobs WHERE id = :id"), {"id": ids[3]}).scalar()
        connection.execute(text("UPDATE jobs SET created_at = :at WHERE id = :id"), {"at": same, "id": ids[4]})
    expected = [job.id for job in store.recent_jobs(100)]
    assert set(expected) == set(ids)

    seen: list[str] = []
    url = "/api/jobs?limit=3"
    pages = 0
    while url:
        body = client.get(url).get_json()
        seen += [job["job_id"] for job in body["jobs"]]
        pages += 1
        if pages == 1:
            store.create_job("Arrived between two pages")  # newer: not on a later page
        url = body.get("next")
    assert seen == expected and pages == 3

    response = client.get("/api/jobs?before=no-such-job")
    assert response.status_code == 400 and '"before"' in response.get_json()["error"]


def test_every_job_says_whether_it_is_finished(client: FlaskClient, app: Flask) -> None:
    store = store_of(app)
    live = store.create_job("Still Going")
    cancelled = store.create_job("Called Off")
    store.mark_cancelled(cancelled.id, by="admin")
    assert client.get(f"/status/{live.id}").get_json()["finished"] is False
    assert client.get(f"/status/{cancelled.id}").get_json()["finished"] is True


def test_healthz_reports_redis_and_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    # The first answer never waits for the workers' ping: it goes out in the background.
    assert response.get_json() == {
        "status": "ok",
        "redis": "ok",
        "database": "ok",
        "workers": "ok",
        "worker_names": None,
    }
    time.sleep(1.5)
    assert client.get("/healthz").get_json()["worker_names"] == []  # no worker runs in these tests


def test_healthz_names_the_missing_worker_while_jobs_wait(client: FlaskClient, app: Flask) -> None:
    # No worker runs in these tests: with nothing waiting that is a quiet moment, with a job
    # queued it is the fault that keeps it waiting.
    assert client.get("/healthz").status_code == 200  # and its ping goes out in the background
    time.sleep(1.5)
    assert client.get("/healthz").status_code == 200
    store_of(app).create_job("Waiting Inc")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["workers"] == "no worker answers while 1 job waits: start one (./run_worker.sh)"
    assert response.get_json()["status"] == "degraded" and response.get_json()["redis"] == "ok"


def test_healthz_says_the_database_is_unreachable_without_saying_why(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection to db.internal:5432 as reports:hunter2 refused"))

    monkeypatch.setattr(store_of(app), "ping", refuse)
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["database"] == "unreachable"
    body = health.get_data(as_text=True)
    assert "db.internal" not in body and "OperationalError" not in body


def test_without_redis_generate_is_a_503_and_stores_nothing(database_url: str, tmp_path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}"
    settings = make_settings(redis_url=dead_redis, database_url=database_url, data_dir=tmp_path, api_token=API_TOKEN)
    app = create_app(settings)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    response = client.post("/generate", json={"startup": "Acme"})
    assert response.status_code == 503 and response.is_json
    assert "Redis" in response.get_json()["error"]
    assert store_of(app).recent_jobs(10) == []

    health = client.get("/healthz")
    # /healthz is open: it names the part, never its address or the exception's text.
    assert health.status_code == 503 and health.get_json()["redis"] == "unreachable"
    assert dead_redis.rsplit(":", 1)[1] not in health.get_data(as_text=True)
    # Reports already stored stay readable while Redis is down.
    store = store_of(app)
    job = store.create_job("Stored")
    store.mark_succeeded(job.id, report_md="# Stored", provider="p")
    assert client.get(f"/status/{job.id}").get_json()["result"] == "# Stored"
    pending = store.create_job("Pending")
    assert client.get(f"/status/{pending.id}").get_json()["state"] == "PENDING"


def test_a_job_can_bring_a_website_notes_and_a_pdf(client: FlaskClient, app: Flask, clean_redis: RedisServer) -> None:
    deck = minimal_pdf([[PDF_SENTENCE]])
    response = client.post(
        "/generate",
        data={
            "startup": "Acme Robotics",
            "website": "acme.example",
            "notes": "Met the CEO.\nThree pilots.",
            "document": (io.BytesIO(deck), "deck.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_json()
    material = store_of(app).load_material(response.get_json()["job_id"])
    assert material.website == "https://acme.example" and material.notes == "Met the CEO.\nThree pilots."
    [document] = material.documents
    assert (document.filename, document.pdf, document.text) == ("deck.pdf", deck, "")  # the worker reads it
    # Material of its own makes it a new job, never a join of the live one for the same startup.
    again = client.post("/generate", json={"startup": "Acme Robotics", "notes": "Other notes."})
    assert again.status_code == 202 and again.get_json()["job_id"] != response.get_json()["job_id"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"website": "javascript:alert(1)"}, "http or https"),
        ({"website": "not a url"}, "web address"),
        ({"website": ["https://a.example"]}, "must be a string"),
        ({"notes": "x" * 20_001}, "at most 20000"),
        ({"notes": "bell\x07"}, "plain text"),
    ],
)
def test_bad_material_is_a_400_that_says_what_to_fix(client: FlaskClient, app: Flask, fields: dict, words: str) -> None:
    response = client.post("/generate", json={"startup": "Acme", **fields})
    assert response.status_code == 400 and words in response.get_json()["error"]
    assert store_of(app).recent_jobs(5) == []


def test_a_document_that_is_not_a_pdf_is_refused(client: FlaskClient, app: Flask) -> None:
    response = client.post(
        "/generate",
        data={"startup": "Acme", "document": (io.BytesIO(b"just text, not a PDF"), "deck.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "deck.pdf: The file is not a PDF."}
    assert store_of(app).recent_jobs(5) == []


def test_a_job_brings_at_most_upload_max_files_documents(client: FlaskClient, app: Flask) -> None:
    def post(count: int) -> TestResponse:
        decks = [(io.BytesIO(minimal_pdf([[f"Deck {n}."]])), f"deck{n}.pdf") for n in range(count)]
        return client.post("/generate", data={"startup": "Acme", "document": decks}, content_type="multipart/form-data")

    refused = post(4)
    assert refused.status_code == 400
    assert refused.get_json()["error"].startswith("A job may bring at most 3 documents; this one has 4.")
    assert store_of(app).recent_jobs(5) == []
    accepted = post(3)
    assert accepted.status_code == 202
    assert len(store_of(app).load_material(accepted.get_json()["job_id"]).documents) == 3


def test_a_pdf_is_stored_as_it_came_and_never_read_in_the_request(client: FlaskClient, app: Flask) -> None:
    """A few hundred KB that inflate to 70 MB a page: the request only keeps the bytes for the worker,
    which reads them in a child process with limits (tests/test_documents.py)."""
    bomb = shared_stream_bomb(16, inflated_bytes=70 * 1024 * 1024)
    response = client.post(
        "/generate",
        data={"startup": "Acme", "document": (io.BytesIO(bomb), "bomb.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    [document] = store_of(app).load_material(response.get_json()["job_id"]).documents
    assert document.pdf == bomb and document.text == ""


def test_what_gunicorn_refuses_before_the_app_is_named_in_the_readme() -> None:
    """A request line over gunicorn's limit is answered by gunicorn itself, as HTML, before Flask
    could make it JSON: the README's "all responses are JSON" says so, with the limit."""
    from gunicorn.config import Config
    from gunicorn.http.errors import LimitRequestLine
    from gunicorn.http.parser import RequestParser

    cfg = Config()
    line = f"GET /status/{'x' * cfg.limit_request_line} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
    with pytest.raises(LimitRequestLine):
        next(iter(RequestParser(cfg, iter([line]), ("127.0.0.1", 50000))))
    api_section = (PROJECT_ROOT / "README.md").read_text().split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    assert f"over {cfg.limit_request_line} bytes is `414`" in " ".join(api_section.split())


@pytest.mark.parametrize("variant", ["Ｔｅｓｌａ", "T\u200besla", "\ufeffTesla"])
def test_a_fullwidth_or_zero_width_variant_joins_the_live_job_of_the_plain_name(
    client: FlaskClient, app: Flask, variant: str
) -> None:
    first = client.post("/generate", json={"startup": "Tesla"}).get_json()
    again = client.post("/generate", json={"startup": variant})
    assert again.status_code == 200 and again.get_json()["status"] == "joined"
    assert again.get_json()["job_id"] == first["job_id"]
    assert [job.startup for job in store_of(app).recent_jobs(10)] == ["Tesla"]


def test_the_stored_name_is_the_normalised_one(client: FlaskClient, app: Flask) -> None:
    job_id = client.post("/generate", json={"startup": " Ｔｅ\u200bｓｌａ "}).get_json()["job_id"]
    assert client.get(f"/status/{job_id}").get_json()["startup"] == "Tesla"
    assert store_of(app).get_job(job_id).startup_key == "tesla"


@pytest.mark.parametrize("control", ["\u202e", "\u2066", "\u200f"])
def test_a_direction_control_in_the_name_is_a_400(client: FlaskClient, app: Flask, control: str) -> None:
    response = client.post("/generate", json={"startup": f"Tesla{control}"})
    assert response.status_code == 400 and response.is_json
    assert "invisible direction control" in response.get_json()["error"]
    assert store_of(app).recent_jobs(5) == []


def test_a_word_mixing_cyrillic_and_latin_letters_is_a_400(client: FlaskClient, app: Flask) -> None:
    client.post("/generate", json={"startup": "Tesla"})
    response = client.post("/generate", json={"startup": "Теsla"})  # a Cyrillic Т
    assert response.status_code == 400
    assert "mixes Latin and Cyrillic letters in one word (“Теsla”)" in response.get_json()["error"]
    assert [job.startup for job in store_of(app).recent_jobs(5)] == ["Tesla"]


def test_direction_controls_are_stripped_from_an_uploaded_filename(client: FlaskClient, app: Flask) -> None:
    response = client.post(
        "/generate",
        data={"startup": "Acme", "document": (io.BytesIO(minimal_pdf([[PDF_SENTENCE]])), "deck\u202efdp.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    [document] = store_of(app).load_material(response.get_json()["job_id"]).documents
    assert document.filename == "deckfdp.pdf"
