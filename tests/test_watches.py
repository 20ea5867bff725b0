"""Watches and their schedule: the API (validation, ownership), the pages, and the tick driven by a
test clock (exactly one re-run per period, whatever the number of ticks, beats or restarts)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from config import Settings
from tests.conftest import RedisServer, log_in, store_of
from webapp import create_app
from webapp.accounts import Accounts
from worker.celery_setup import create_celery
from worker.jobs import JobService, QueueUnavailable
from worker.models import Company, Job, JobState, Watch, utcnow
from worker.research import Document, Material
from worker.store import JobStore
from worker.watch_tasks import submitter
from worker.watches import DAY, InvalidCadence, parse_every, queue_due_reruns

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WEEK = 7 * DAY


def make_company(store: JobStore, name: str = "Acme Robotics", website: str | None = "https://acme.example") -> int:
    with store.session() as session:
        company = Company(key=f"{name.lower()}-{uuid.uuid4().hex[:6]}", name=name, website=website)
        session.add(company)
        session.flush()
        return company.id


def add_version(
    store: JobStore,
    company_id: int,
    finished_at: datetime,
    startup: str = "Acme Robotics",
    material: Material | None = None,
) -> str:
    """A finished report of the company, as the versions code stores one."""
    job = store.create_job(startup, "admin", material=material)
    store.mark_succeeded(job.id, report_md="# Report", provider="offline")
    with store.session() as session:
        row = session.get(Job, job.id)
        row.company_id, row.finished_at, row.started_at = company_id, finished_at, finished_at - timedelta(minutes=1)
    return job.id


def client_for(app: Flask, username: str) -> FlaskClient:
    """A script's client for `username` (made if missing), by its own bearer token."""
    accounts: Accounts = app.extensions["accounts"]
    if accounts.by_name(username) is None:
        accounts.create_user(username, "a-long-enough-password")
    _, secret = accounts.create_token(username, "tests")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


def company_row(store: JobStore, company_id: int) -> Company:
    with store.session() as session:
        return session.get(Company, company_id)


def watch_jobs(store: JobStore) -> list[Job]:
    with store.session() as session:
        return list(session.scalars(select(Job).where(Job.trigger == "watch").order_by(Job.created_at)))


# Cadences.


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("daily", DAY), ("weekly", WEEK), ("Monthly", 30 * DAY), ("off", 0), (7200, 7200), ("3600", 3600)],
)
def test_a_cadence_is_a_name_or_enough_seconds(value: object, seconds: int) -> None:
    assert parse_every(value, 3600) == seconds


@pytest.mark.parametrize("value", [59, "59", "hourly", True, -1, None, 3599.5, "", [3600]])
def test_other_cadences_are_refused(value: object) -> None:
    with pytest.raises(InvalidCadence, match="at least 3600"):
        parse_every(value, 3600)


# The API.


def test_watching_schedules_one_period_after_the_newest_version(app: Flask, api_client: FlaskClient) -> None:
    store = store_of(app)
    company_id = make_company(store)
    add_version(store, company_id, T0 - timedelta(days=3))
    newest = add_version(store, company_id, T0)

    response = api_client.post("/api/watches", json={"company_id": company_id, "every": "weekly"})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["company"]["name"] == "Acme Robotics" and body["every"] == "weekly" and body["every_seconds"] == WEEK
    assert body["last_run"] == "2026-01-05T09:00:00Z" and body["last_report_id"] == newest
    assert body["next_run"] == "2026-01-12T09:00:00Z"
    company = company_row(store, company_id)
    assert company.every_seconds == WEEK and company.next_run_at == T0 + timedelta(days=7)

    # Watching again changes the cadence: one watch per user and company.
    response = api_client.post("/api/watches", json={"report_id": newest, "every": "daily"})
    assert response.status_code == 200 and response.json["id"] == body["id"] and response.json["every"] == "daily"
    assert company_row(store, company_id).next_run_at == T0 + timedelta(days=1)
    listed = api_client.get("/api/watches").json["watches"]
    assert [w["id"] for w in listed] == [body["id"]] and listed[0]["next_run"] == "2026-01-06T09:00:00Z"


def test_a_company_without_a_version_runs_one_period_from_now(app: Flask, api_client: FlaskClient) -> None:
    store = store_of(app)
    company_id = make_company(store)
    before = utcnow()
    assert api_client.post("/api/watches", json={"company_id": company_id, "every": 7200}).status_code == 201
    next_run = company_row(store, company_id).next_run_at
    assert before + timedelta(seconds=7200) <= next_run <= utcnow() + timedelta(seconds=7200)


def test_the_shortest_active_watch_sets_the_cadence(app: Flask, api_client: FlaskClient) -> None:
    store = store_of(app)
    company_id = make_company(store)
    add_version(store, company_id, T0)
    alice = client_for(app, "alice")
    api_client.post("/api/watches", json={"company_id": company_id, "every": "monthly"})
    alice_watch = alice.post("/api/watches", json={"company_id": company_id, "every": "weekly"}).json
    assert company_row(store, company_id).every_seconds == WEEK
    alice.post("/api/watches", json={"company_id": company_id, "every": "off"})
    assert company_row(store, company_id).every_seconds == 30 * DAY
    # An "off" watch stays on the list, without a next run.
    listed = alice.get("/api/watches").json["watches"]
    assert listed[0]["id"] == alice_watch["id"] and listed[0]["every"] == "off" and listed[0]["next_run"] is None
    admin_watch = api_client.get("/api/watches").json["watches"][0]
    assert api_client.delete(f"/api/watches/{admin_watch['id']}").status_code == 204
    company = company_row(store, company_id)
    assert company.every_seconds is None and company.next_run_at is None


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ({"company_id": 999, "every": "weekly"}, 404, "No company with id 999"),
        ({"report_id": str(uuid.uuid4()), "every": "weekly"}, 404, "No report"),
        ({"every": "weekly"}, 400, "Name the company"),
        ({"company_id": "one", "every": "weekly"}, 400, "whole number"),
        ({"company_id": "COMPANY", "every": "hourly"}, 400, "at least 3600"),
        ({"company_id": "COMPANY", "every": 60}, 400, "at least 3600"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_invalid_watch_requests_are_refused_with_json(
    app: Flask, api_client: FlaskClient, payload: object, status: int, says: str
) -> None:
    company_id = make_company(store_of(app))
    if isinstance(payload, dict) and payload.get("company_id") == "COMPANY":
        payload["company_id"] = company_id
    response = api_client.post("/api/watches", json=payload)
    assert response.status_code == status and says in response.json["error"]
    with store_of(app).session() as session:
        assert session.scalar(select(Watch.id)) is None


def test_a_company_id_beyond_any_row_is_unknown_not_an_error(app: Flask, api_client: FlaskClient) -> None:
    for path, body in (
        ("/api/watches", {"company_id": 10**30, "every": "weekly"}),
        ("/api/companies/99999999999999999999/deliveries", None),
    ):
        response = api_client.post(path, json=body) if body else api_client.get(path)
        assert response.status_code == 404 and "No company" in response.json["error"]


def test_with_private_reports_another_analysts_company_cannot_be_watched(settings: Settings) -> None:
    """PRIVATE_REPORTS=true: a company none of whose versions bob may read is as unknown to the
    watch API and the deliveries list as it is on its page; alice, its analyst, may watch it."""
    settings.private_reports = True
    app = create_app(settings)
    store = store_of(app)
    company_id = make_company(store)
    job = store.create_job("Acme Robotics", "alice")
    store.mark_succeeded(job.id, report_md="# Report", provider="offline")
    with store.session() as session:
        session.get(Job, job.id).company_id = company_id
    alice, bob = client_for(app, "alice"), client_for(app, "bob")

    for body in ({"company_id": company_id, "every": "weekly"}, {"report_id": job.id, "every": "weekly"}):
        refused = bob.post("/api/watches", json=body)
        assert refused.status_code == 404, refused.json
    assert bob.get(f"/api/companies/{company_id}/deliveries").status_code == 404
    assert alice.post("/api/watches", json={"company_id": company_id, "every": "weekly"}).status_code == 201
    assert alice.get(f"/api/companies/{company_id}/deliveries").status_code == 200
    app.extensions["jobs"].workers.stop()


def test_a_report_of_no_company_cannot_be_watched(app: Flask, api_client: FlaskClient) -> None:
    job = store_of(app).create_job("Loose Ends", "admin")
    response = api_client.post("/api/watches", json={"report_id": job.id, "every": "weekly"})
    assert response.status_code == 400 and "belongs to no company" in response.json["error"]


def test_only_the_owner_or_an_admin_removes_a_watch(app: Flask, api_client: FlaskClient) -> None:
    company_id = make_company(store_of(app))
    alice, bob = client_for(app, "alice"), client_for(app, "bob")
    alice_watch = alice.post("/api/watches", json={"company_id": company_id, "every": "weekly"}).json
    bob_watch = bob.post("/api/watches", json={"company_id": company_id, "every": "weekly"}).json

    refused = bob.delete(f"/api/watches/{alice_watch['id']}")
    assert refused.status_code == 403 and "Only the user" in refused.json["error"]
    assert [w["id"] for w in bob.get("/api/watches").json["watches"]] == [bob_watch["id"]]  # lists are one's own
    assert api_client.delete(f"/api/watches/{alice_watch['id']}").status_code == 204  # admin
    assert alice.delete(f"/api/watches/{alice_watch['id']}").status_code == 404
    assert bob.delete(f"/api/watches/{bob_watch['id']}").status_code == 204
    assert company_row(store_of(app), company_id).next_run_at is None


# Pages.


def test_the_report_page_has_the_watch_form_and_the_watchlist_lists_it(app: Flask) -> None:
    store = store_of(app)
    company_id = make_company(store)
    job_id = add_version(store, company_id, T0)
    client = app.test_client()
    log_in(client)
    page = client.get(f"/reports/{job_id}").get_data(as_text=True)
    assert 'action="/watches"' in page and f'name="company_id" value="{company_id}"' in page

    response = client.post("/watches", data={"company_id": company_id, "every": "weekly", "next": f"/reports/{job_id}"})
    assert response.status_code == 303 and response.headers["Location"] == f"/reports/{job_id}"
    swapped = client.post("/watches", data={"company_id": company_id, "every": "daily"}, headers={"HX-Request": "true"})
    assert swapped.status_code == 200 and "Saved." in swapped.get_data(as_text=True)
    assert '<option value="daily" selected>' in swapped.get_data(as_text=True)

    watchlist = client.get("/watches").get_data(as_text=True)
    assert "Acme Robotics" in watchlist and "Daily" in watchlist and "06 Jan 2026, 09:00" in watchlist
    assert 'href="/watches" aria-current="page"' in watchlist


def test_the_watch_form_without_a_csrf_token_is_refused(app: Flask) -> None:
    company_id = make_company(store_of(app))
    client = app.test_client()
    log_in(client)
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    assert client.post("/watches", data={"company_id": company_id, "every": "weekly"}).status_code == 403


# The schedule, with a test clock.


@pytest.fixture
def service(app: Flask, clean_redis: RedisServer) -> JobService:
    """The worker's side of a tick: the job service on the tests' (emptied) Redis."""
    return JobService(store_of(app), create_celery(app.extensions["settings"]))


def watched_company(app: Flask, client: FlaskClient, every: str = "weekly") -> tuple[int, str]:
    store = store_of(app)
    company_id = make_company(store)
    version = add_version(store, company_id, T0)
    assert client.post("/api/watches", json={"company_id": company_id, "every": every}).status_code == 201
    return company_id, version


def finish(store: JobStore, job_id: str, company_id: int, at: datetime) -> None:
    """A re-run that has finished: a new version of the company."""
    store.mark_succeeded(job_id, report_md="# Again", provider="offline")
    with store.session() as session:
        row = session.get(Job, job_id)
        row.company_id, row.finished_at = company_id, at


def test_exactly_one_rerun_per_period(app: Flask, api_client: FlaskClient, service: JobService, clean_redis) -> None:
    store = store_of(app)
    company_id, version = watched_company(app, api_client)
    submit = submitter(service)

    assert queue_due_reruns(store, submit, T0 + timedelta(days=6, hours=23)) == []  # not yet due
    first = queue_due_reruns(store, submit, T0 + timedelta(days=7, seconds=1))
    assert len(first) == 1
    job = store.get_job(first[0])
    assert (job.trigger, job.previous_job_id, job.website, job.created_by) == (
        "watch",
        version,
        "https://acme.example",
        "admin",
    )
    assert job.startup == "Acme Robotics" and job.state == JobState.PENDING
    assert clean_redis.client(0).llen("celery") == 1  # queued as any job is
    assert company_row(store, company_id).next_run_at == T0 + timedelta(days=14)

    # More ticks in the same period, a fresh store (a restarted beat's worker): nothing more.
    for moment in (T0 + timedelta(days=7, seconds=2), T0 + timedelta(days=10), T0 + timedelta(days=13, hours=23)):
        assert queue_due_reruns(store, submit, moment) == []
        assert queue_due_reruns(JobStore(app.extensions["settings"].database_url), submit, moment) == []
    # Another watcher joining mid-period does not open the period again.
    client_for(app, "alice").post("/api/watches", json={"company_id": company_id, "every": "weekly"})
    assert queue_due_reruns(store, submit, T0 + timedelta(days=13)) == []

    finish(store, first[0], company_id, T0 + timedelta(days=7, minutes=5))
    second = queue_due_reruns(store, submit, T0 + timedelta(days=14, seconds=1))
    assert len(second) == 1 and store.get_job(second[0]).previous_job_id == first[0]
    assert queue_due_reruns(store, submit, T0 + timedelta(days=14, seconds=2)) == []
    assert len(watch_jobs(store)) == 2 and clean_redis.client(0).llen("celery") == 2


def test_a_rerun_brings_the_analysts_material_of_the_version_it_builds_on(
    app: Flask, api_client: FlaskClient, service: JobService
) -> None:
    """Notes and documents are part of what a report rests on: a re-run that dropped them would
    lose them from the report, and would find every section's sources changed (no step kept)."""
    store = store_of(app)
    company_id = make_company(store)
    deck = Document("deck.pdf", pdf=b"%PDF-1.4 the deck")
    material = Material(website="https://acme.example", notes="Met the founders in May.", documents=(deck,))
    version = add_version(store, company_id, T0, material=material)
    assert api_client.post("/api/watches", json={"company_id": company_id, "every": "weekly"}).status_code == 201

    [rerun] = queue_due_reruns(store, submitter(service), T0 + timedelta(days=7, seconds=1))

    assert store.get_job(rerun).previous_job_id == version
    assert store.load_material(rerun) == store.load_material(version)
    assert store.load_material(rerun).notes == "Met the founders in May."


def test_two_ticks_racing_queue_one_rerun(app: Flask, api_client: FlaskClient, service: JobService) -> None:
    """Two beats by mistake: ticks at the same moment in several threads, each with its own store
    (its own connections, as two worker processes have)."""
    store = store_of(app)
    watched_company(app, api_client)
    url = app.extensions["settings"].database_url
    barrier = threading.Barrier(4)
    results: list[list[str]] = []

    def tick() -> None:
        own = JobStore(url)
        barrier.wait()
        results.append(queue_due_reruns(own, submitter(service), T0 + timedelta(days=7, seconds=1)))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert len(watch_jobs(store)) == 1


def test_a_live_rerun_holds_back_the_next_period(app: Flask, api_client: FlaskClient, service: JobService) -> None:
    store = store_of(app)
    company_id, _ = watched_company(app, api_client, every="daily")
    submit = submitter(service)
    assert len(queue_due_reruns(store, submit, T0 + timedelta(days=1, seconds=1))) == 1
    assert queue_due_reruns(store, submit, T0 + timedelta(days=2, seconds=1)) == []  # the first still runs
    assert company_row(store, company_id).next_run_at == T0 + timedelta(days=3)


def test_periods_missed_while_no_beat_ran_are_skipped(app: Flask, api_client: FlaskClient, service: JobService) -> None:
    store = store_of(app)
    company_id, _ = watched_company(app, api_client)
    assert len(queue_due_reruns(store, submitter(service), T0 + timedelta(days=30))) == 1
    assert company_row(store, company_id).next_run_at == T0 + timedelta(days=35)


def test_a_rerun_that_cannot_be_queued_gives_its_period_back(app: Flask, api_client: FlaskClient) -> None:
    store = store_of(app)
    company_id, _ = watched_company(app, api_client)

    def redis_down(_rerun: object) -> Job:
        raise QueueUnavailable("Redis is away")

    assert queue_due_reruns(store, redis_down, T0 + timedelta(days=7, seconds=1)) == []
    assert company_row(store, company_id).next_run_at == T0 + timedelta(days=7)
