"""Companies, versions and what changed, as users and scripts see them: `/companies/<id>`, the
report page's versions and *Changes since* view, and the JSON API (`/api/companies`,
`/api/companies/<id>`, `/api/reports/<id>/changes`), with its errors and PRIVATE_REPORTS."""

from __future__ import annotations

import html

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AUTH, log_in, logged_in, store_of
from tests.test_changes import FACTS_V1, SOURCES_V1, SOURCES_V2, TRACTION, renumbered, report
from worker.companies import attach_company, record_change
from worker.models import Job
from worker.store import JobStore

NEVER_ISSUED = "00000000-0000-0000-0000-000000000000"

V2_FACTS = {**renumbered(FACTS_V1), "Head count": "55 [4]"}  # the team page, now 4th


def version(
    store: JobStore, markdown: str, *, owner: str | None = "admin", name: str = "Acme Robotics", website: str = ""
) -> Job:
    """A finished report on `name` with `markdown`, stored as the worker stores one."""
    job = store.create_job(name, owner)
    store.mark_started(job.id, worker="w@h", attempt=1)
    attach_company(store, job.id, name, website or "https://acmerobotics.com")
    store.mark_succeeded(job.id, report_md=markdown, provider="openai/gpt")
    record_change(store, job.id, threshold=0.2)
    return store.get_job(job.id)


def three_versions(store: JobStore, owner: str | None = "admin") -> tuple[Job, Job, Job]:
    first = version(store, report(FACTS_V1, SOURCES_V1), owner=owner)
    second = version(
        store,
        report(V2_FACTS, SOURCES_V2, traction=TRACTION.replace("[3]", "[4]").replace("[2]", "[3]")).replace(
            "[1]", "[2]"
        ),
        owner=owner,
    )
    third = version(store, second.report_md, owner=owner)
    return first, second, third


@pytest.fixture
def client(api_client: FlaskClient) -> FlaskClient:
    return api_client


def test_a_company_and_its_versions_newest_first(app: Flask, client: FlaskClient) -> None:
    store = store_of(app)
    first, second, third = three_versions(store)
    other = version(store, report(FACTS_V1, SOURCES_V1), name="Globex", website="https://globex.io")

    listed = client.get("/api/companies").get_json()
    assert [c["name"] for c in listed["companies"]] == ["Globex", "Acme Robotics"]
    acme = listed["companies"][1]
    assert acme["versions_count"] == 3 and acme["latest_version"]["job_id"] == third.id
    assert acme["website"] == "https://acmerobotics.com"

    page = client.get("/api/companies?limit=1").get_json()
    assert [c["name"] for c in page["companies"]] == ["Globex"]
    assert [c["name"] for c in client.get(page["next"]).get_json()["companies"]] == ["Acme Robotics"]

    detail = client.get(acme["url"]).get_json()
    assert [v["job_id"] for v in detail["versions"]] == [third.id, second.id, first.id]
    assert [v["material"] for v in detail["versions"]] == [False, True, None]
    assert detail["versions"][0]["report_url"] == f"/reports/{third.id}"
    assert other.company_id != first.company_id


def test_the_changes_of_a_version_with_cited_figures(app: Flask, client: FlaskClient) -> None:
    first, second, third = three_versions(store_of(app))
    changes = client.get(f"/api/reports/{second.id}/changes").get_json()
    assert (changes["job_id"], changes["previous_job_id"]) == (second.id, first.id)
    assert changes["since"] == first.finished_at.date().isoformat()
    assert changes["company"]["name"] == "Acme Robotics"
    assert changes["material"] is True and changes["reasons"] == ["Head count: 40 → 55"]
    (head_count,) = changes["figures"]
    assert head_count["before_sources"][0]["url"] == "https://blog.example/acme-team"
    assert head_count["after_sources"] == [
        {"number": 4, "title": "Inside Acme Robotics' engineering team", "url": "https://blog.example/acme-team"}
    ]
    assert [s["url"] for s in changes["new_sources"]] == ["https://news.example/acme-series-b"]

    unchanged = client.get(f"/api/reports/{third.id}/changes").get_json()
    assert unchanged["material"] is False and unchanged["figures"] == [] and unchanged["sections"] == []
    # Against an older version, computed on the fly.
    against_first = client.get(f"/api/reports/{third.id}/changes?against={first.id}").get_json()
    assert against_first["previous_job_id"] == first.id and against_first["reasons"] == ["Head count: 40 → 55"]

    status = client.get(f"/status/{second.id}").get_json()
    assert status["company_url"] == f"/api/companies/{second.company_id}"
    assert status["changes_url"] == f"/api/reports/{second.id}/changes"

    first_version = client.get(f"/api/reports/{first.id}/changes").get_json()
    assert first_version["previous_job_id"] is None and "first version" in first_version["message"]


def test_bad_requests_are_json_errors(app: Flask, client: FlaskClient) -> None:
    store = store_of(app)
    first, second, _ = three_versions(store)
    globex = version(store, report(FACTS_V1, SOURCES_V1), name="Globex", website="https://globex.io")
    pending = store.create_job("Acme Robotics", "admin")

    cases = [
        (f"/api/reports/{NEVER_ISSUED}/changes", 404),
        ("/api/reports/not-a-job/changes", 404),
        (f"/api/reports/{pending.id}/changes", 409),
        (f"/api/reports/{second.id}/changes?against={NEVER_ISSUED}", 404),
        (f"/api/reports/{second.id}/changes?against=garbage", 404),
        (f"/api/reports/{first.id}/changes?against={second.id}", 400),  # a later version
        (f"/api/reports/{second.id}/changes?against={second.id}", 400),  # itself
        (f"/api/reports/{second.id}/changes?against={globex.id}", 400),  # another company
        (f"/api/reports/{second.id}/changes?against={pending.id}", 400),  # not a version
        ("/api/companies/999999", 404),
        ("/api/companies/99999999999999999999", 404),
        ("/api/companies/abc", 404),
        ("/api/companies?limit=0", 400),
        ("/api/companies?limit=abc", 400),
        ("/api/companies?before=-1", 400),
        ("/api/companies?before=1e9", 400),
    ]
    for url, status in cases:
        response = client.get(url)
        assert response.status_code == status, (url, response.get_data(as_text=True))
        assert isinstance(response.get_json()["error"], str), url


def test_private_versions_are_listed_only_to_those_who_may_read_them(private_app: Flask) -> None:
    store = store_of(private_app)
    alices = version(store, report(FACTS_V1, SOURCES_V1), owner="alice")
    bobs = version(store, report(V2_FACTS, SOURCES_V2), owner="bob")
    carol_free = version(store, report(FACTS_V1, SOURCES_V1), owner="alice", name="Globex", website="globex.io")
    alice, bob = logged_in(private_app, "alice"), logged_in(private_app, "bob")
    admin = private_app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    company = f"/api/companies/{alices.company_id}"

    assert [v["job_id"] for v in alice.get(company).get_json()["versions"]] == [alices.id]
    assert [v["job_id"] for v in bob.get(company).get_json()["versions"]] == [bobs.id]
    assert [v["job_id"] for v in admin.get(company).get_json()["versions"]] == [bobs.id, alices.id]
    assert [c["name"] for c in bob.get("/api/companies").get_json()["companies"]] == ["Acme Robotics"]
    assert bob.get(f"/api/companies/{carol_free.company_id}").status_code == 404
    assert bob.get(f"/companies/{carol_free.company_id}", headers={"Accept": "text/html"}).status_code == 404

    # Bob's report is the first version he may read: nothing of Alice's is compared or named.
    assert bob.get(f"/api/reports/{bobs.id}/changes").get_json()["previous_job_id"] is None
    assert bob.get(f"/api/reports/{bobs.id}/changes?against={alices.id}").status_code == 404
    assert admin.get(f"/api/reports/{bobs.id}/changes").get_json()["previous_job_id"] == alices.id
    page = bob.get(f"/reports/{bobs.id}").get_data(as_text=True)
    assert alices.id not in page and "Changes since" not in page


def test_the_company_page_and_the_report_pages_changes(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    first, second, third = three_versions(store_of(app))

    company_page = client.get(f"/companies/{first.company_id}").get_data(as_text=True)
    assert "Acme Robotics" in company_page and "https://acmerobotics.com" in company_page
    assert [company_page.index(f"/reports/{job.id}") for job in (third, second, first)] == sorted(
        company_page.index(f"/reports/{job.id}") for job in (third, second, first)
    )
    assert client.get("/companies/999999").status_code == 404

    page = html.unescape(client.get(f"/reports/{second.id}").get_data(as_text=True))
    assert f"Changes since {first.finished_at.date().isoformat()}" in page
    assert "Head count: 40 → 55" in page  # the reason
    assert '<th scope="row">Head count</th>' in page
    assert 'href="https://blog.example/acme-team"' in page and 'href="https://news.example/acme-series-b"' in page
    assert "New sources" in page
    assert f'href="/companies/{first.company_id}"' in page
    assert f"/reports/{second.id}?against={first.id}" not in page  # the version before is the default
    third_page = client.get(f"/reports/{third.id}").get_data(as_text=True)
    assert f"/reports/{third.id}?against={first.id}" in html.unescape(third_page)  # compare with an older one
    assert "No material change" in third_page or "Nothing changed" in third_page

    compared = html.unescape(client.get(f"/reports/{third.id}?against={first.id}").get_data(as_text=True))
    assert "Head count: 40 → 55" in compared
    refused = client.get(f"/reports/{first.id}?against={third.id}")
    assert refused.status_code == 200 and "must be the id of an earlier version" in html.unescape(
        refused.get_data(as_text=True)
    )
    assert "Changes since" not in client.get(f"/reports/{first.id}").get_data(as_text=True)
