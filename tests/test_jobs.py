"""Who sees and does what (JobService.may_read, may_act), through every route that reads or acts
on a job: reports are shared by default, private to their owner and admin with PRIVATE_REPORTS,
and cancel and retry are the owner's and admin's in both settings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from tests.conftest import AUTH, log_in, store_of
from webapp import create_app
from worker.models import Job
from worker.store import JobStore

HX = {"HX-Request": "true"}
HTML = {"Accept": "text/html"}
PASSWORD = "a long enough password"
NEVER_ISSUED = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(params=[False, True], ids=["shared", "private"])
def private(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def app(settings: Settings, private: bool) -> Iterator[Flask]:
    settings.private_reports = private
    app = create_app(settings)
    app.extensions["accounts"].create_user("alice", PASSWORD)
    app.extensions["accounts"].create_user("bob", PASSWORD)
    yield app
    app.extensions["jobs"].workers.stop()


def logged_in(app: Flask, username: str, password: str | None = None) -> FlaskClient:
    client = app.test_client()
    if password is None:
        log_in(client)  # admin
    else:
        log_in(client, username, password)
    return client


@dataclass
class People:
    alice: FlaskClient
    bob: FlaskClient
    admin: FlaskClient
    script: FlaskClient  # API_TOKEN: admin's bearer token


@pytest.fixture
def people(app: Flask) -> People:
    script = app.test_client()
    script.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return People(
        alice=logged_in(app, "alice", PASSWORD),
        bob=logged_in(app, "bob", PASSWORD),
        admin=logged_in(app, "admin"),
        script=script,
    )


def finished(store: JobStore, name: str, owner: str | None) -> Job:
    job = store.create_job(name, owner)
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.mark_succeeded(job.id, report_md=f"# {name}\n\n## Summary\n\nGood.\n", provider="offline/demo")
    return store.get_job(job.id)


def failed(store: JobStore, name: str, owner: str | None) -> Job:
    job = store.create_job(name, owner)
    store.mark_failed(job.id, error="The provider rejected the key.")
    return store.get_job(job.id)


def read_paths(job_id: str) -> list[str]:
    return [f"/status/{job_id}", f"/reports/{job_id}", f"/reports/{job_id}.md", f"/jobs/{job_id}/card"]


# A page's CSRF token is signed with the second it was made in: two pages a second apart differ.
CSRF_TOKEN = re.compile(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]+')


def answer(client: FlaskClient, path: str, job_id: str, **kwargs: object) -> tuple[int, str]:
    """Status and body, with the job's id and the CSRF token taken out, to compare with a job never issued."""
    response = client.get(path, **kwargs)
    body = response.get_data(as_text=True).replace(job_id, "<id>")
    return response.status_code, CSRF_TOKEN.sub(r"\1<token>", body)


def test_reads_are_shared_or_private_to_the_owner_and_admin(app: Flask, people: People, private: bool) -> None:
    store = store_of(app)
    report = finished(store, "Acme", "alice")
    broken = failed(store, "Broken Co", "alice")
    for job in (report, broken):
        for path in read_paths(job.id):
            for reader in (people.alice, people.admin, people.script):
                assert reader.get(path).status_code in (200, 409), (path, reader)  # 409: a failed job's .md
            if private:
                # Exactly as for a job never issued, as a page and as an htmx poll alike.
                for headers in (HTML, HX, {}):
                    unknown = path.replace(job.id, NEVER_ISSUED)
                    assert answer(people.bob, path, job.id, headers=headers) == answer(
                        people.bob, unknown, NEVER_ISSUED, headers=headers
                    ), path
                assert people.bob.get(path).status_code == 404
            else:
                assert people.bob.get(path).status_code in (200, 409), path
    assert people.alice.get(f"/reports/{report.id}.md").get_data(as_text=True).startswith("# Acme")


def test_a_job_without_an_owner_is_private_to_admin(app: Flask, people: People, private: bool) -> None:
    """Jobs made before jobs had owners: admin's alone to act on, and to see with PRIVATE_REPORTS."""
    job = finished(store_of(app), "Orphan Co", None)
    assert people.script.get(f"/status/{job.id}").status_code == 200
    assert people.admin.get(f"/reports/{job.id}").status_code == 200
    assert people.alice.get(f"/status/{job.id}").status_code == (404 if private else 200)


def api_pages(client: FlaskClient, limit: int) -> list[list[str]]:
    """Every page of GET /api/jobs, following `next`."""
    pages: list[list[str]] = []
    url: str | None = f"/api/jobs?limit={limit}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        pages.append([job["job_id"] for job in response.get_json()["jobs"]])
        url = response.get_json().get("next")
    return pages


def test_lists_show_what_the_user_may_read_in_whole_pages(app: Flask, people: People, private: bool) -> None:
    store = store_of(app)
    # Interleaved, so that a page filtered after the query would come out short or empty.
    jobs = []
    for i in range(3):
        jobs += [finished(store, f"Alpha {i}", "alice"), finished(store, f"Beta {i}", "bob")]
    jobs.append(finished(store, "Orphan", None))
    newest_first = [job.id for job in reversed(jobs)]
    bobs = [job.id for job in reversed(jobs) if job.created_by == "bob"]

    for limit in (1, 2):
        pages = api_pages(people.bob, limit)
        seen = [job_id for page in pages for job_id in page]
        assert seen == (bobs if private else newest_first)
        assert all(len(page) == limit for page in pages[:-1]) and pages[-1]
    assert [job_id for page in api_pages(people.admin, 2) for job_id in page] == newest_first
    assert [job_id for page in api_pages(people.script, 3) for job_id in page] == newest_first

    # A page "before" someone else's job: a job bob cannot see, as one never issued.
    alices = next(job for job in jobs if job.created_by == "alice")
    before = people.bob.get(f"/api/jobs?limit=2&before={alices.id}")
    if private:
        assert before.status_code == 400 and '"before"' in before.get_json()["error"]
    else:
        assert before.status_code == 200

    dashboard = people.bob.get("/").get_data(as_text=True)
    cards = re.findall(r'<article class="card[^"]*" id="job-([^"]+)"', dashboard)
    assert cards == (bobs if private else newest_first)

    listed = people.bob.get("/reports").get_data(as_text=True)
    assert ("3 reports" if private else "7 reports") in listed
    assert ("Alpha 0" in listed) is not private and "Beta 0" in listed
    searched = people.bob.get("/reports?q=alpha").get_data(as_text=True)
    assert ("0 reports" if private else "3 reports") in searched
    assert "3 reports" in people.alice.get("/reports?q=alpha").get_data(as_text=True)
    assert "7 reports" in people.admin.get("/reports").get_data(as_text=True)


def test_reports_pages_stay_whole_when_private(app: Flask, people: People, private: bool) -> None:
    store = store_of(app)
    for i in range(25):
        finished(store, f"Alpha {i}", "alice")
    for i in range(21):
        finished(store, f"Beta {i}", "bob")
    first = people.bob.get("/reports").get_data(as_text=True)
    second = people.bob.get("/reports?page=2").get_data(as_text=True)
    assert first.count('class="report-list__item"') == 20
    if private:
        assert "Page 1 of 2" in first and second.count('class="report-list__item"') == 1
    else:
        assert "Page 1 of 3" in first and second.count('class="report-list__item"') == 20


def test_a_submission_joins_only_a_live_job_its_user_may_see(app: Flask, people: People, private: bool) -> None:
    alices = people.alice.post("/generate", json={"startup": "Acme"}).get_json()["job_id"]
    bobs = people.bob.post("/generate", json={"startup": "Acme"})
    if private:
        assert bobs.status_code == 202 and bobs.get_json()["job_id"] != alices
    else:
        assert bobs.status_code == 200 and bobs.get_json()["job_id"] == alices


def row(store: JobStore, job_id: str) -> dict[str, object]:
    job = store.get_job(job_id)
    return {"state": job.state, "cancelled_by": job.cancelled_by, "retried_as": job.retried_as, "error": job.error}


def test_others_may_not_cancel_or_retry_and_nothing_changes(app: Flask, people: People, private: bool) -> None:
    store = store_of(app)
    live = store.create_job("Live Co", "alice")
    broken = failed(store, "Broken Co", "alice")
    before = {job.id: row(store, job.id) for job in (live, broken)}
    count = len(store.recent_jobs(100))
    refused = 404 if private else 403

    api = people.bob.post(f"/api/jobs/{live.id}/cancel")
    assert api.status_code == refused and api.is_json
    assert ("No job with id" if private else "Only the user who asked") in api.get_json()["error"]

    for path in (f"/jobs/{live.id}/cancel", f"/jobs/{broken.id}/retry"):
        page = people.bob.post(path, headers=HTML)
        assert page.status_code == refused
        assert ("No job with id" if private else "Only the user who asked for this report, or an admin") in (
            page.get_data(as_text=True)
        )
        card = people.bob.post(path, headers=HX)
        if private:
            assert card.status_code == 286 and "This job no longer exists" in card.get_data(as_text=True)
        else:
            body = card.get_data(as_text=True)
            assert card.status_code == 200 and "Only the user who asked" in body and 'role="alert"' in body

    assert {job.id: row(store, job.id) for job in (live, broken)} == before
    assert len(store.recent_jobs(100)) == count


def test_cards_offer_cancel_and_retry_only_to_the_owner_and_admin(app: Flask, people: People, private: bool) -> None:
    store = store_of(app)
    live = store.create_job("Live Co", "alice")
    broken = failed(store, "Broken Co", "alice")
    for client in (people.alice, people.admin):
        page = client.get("/").get_data(as_text=True)
        assert f"/jobs/{live.id}/cancel" in page and f"/jobs/{broken.id}/retry" in page
        assert "Retry queues it again" in client.get(f"/reports/{broken.id}").get_data(as_text=True)
    bobs_page = people.bob.get("/").get_data(as_text=True)
    assert "/cancel" not in bobs_page and "/retry" not in bobs_page
    if not private:
        assert f"job-{live.id}" in bobs_page  # seen, but not his to stop
        assert "/cancel" not in people.bob.get(f"/jobs/{live.id}/card").get_data(as_text=True)
        pending = people.bob.get(f"/reports/{broken.id}").get_data(as_text=True)
        assert "/retry" not in pending and "Retry queues it again" not in pending


def test_the_owner_and_admin_may_cancel_and_retry(app: Flask, people: People, private: bool) -> None:
    store = store_of(app)
    by_owner = store.create_job("Own Co", "alice")
    by_admin = store.create_job("Other Co", "alice")
    orphan = store.create_job("Orphan Co", None)

    response = people.alice.post(f"/api/jobs/{by_owner.id}/cancel")
    assert response.status_code == 200 and response.get_json()["cancelled_by"] == "alice"
    assert people.admin.post(f"/jobs/{by_admin.id}/cancel").status_code == 303
    assert row(store, by_admin.id)["cancelled_by"] == "admin"
    # Nobody owns it: admin's alone (here by API_TOKEN, which acts as admin).
    assert people.alice.post(f"/api/jobs/{orphan.id}/cancel").status_code == (404 if private else 403)
    assert row(store, orphan.id)["state"] == "PENDING"
    assert people.script.post(f"/api/jobs/{orphan.id}/cancel").status_code == 200

    own_failure = failed(store, "Broken Co", "alice")
    retried = people.alice.post(f"/jobs/{own_failure.id}/retry", headers=HX)
    assert retried.status_code == 200
    new_id = row(store, own_failure.id)["retried_as"]
    assert store.get_job(new_id).created_by == "alice" and f"job-{new_id}" in retried.get_data(as_text=True)

    # An admin's retry stays the owner's report, so a private one does not vanish from its owner.
    other_failure = failed(store, "Fragile Co", "alice")
    assert people.admin.post(f"/jobs/{other_failure.id}/retry").status_code == 303
    again = store.get_job(row(store, other_failure.id)["retried_as"])
    assert again.created_by == "alice" and again.state == "PENDING"
    assert people.alice.get(f"/status/{again.id}").status_code == 200
