"""`GET /api/reports/<id>`: a finished report with its key facts as data, its errors, and who may
read it (PRIVATE_REPORTS, as for `/status`)."""

from __future__ import annotations

import html
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AUTH, log_in, logged_in, store_of
from tests.test_pipeline import run_report
from worker.celery_setup import ReportsCelery
from worker.facts import FACT_FIELDS, Fact, FactSource
from worker.sources.fact_check import FigureCounts
from worker.store import JobStore

FACTS = [
    Fact("recommendation", "Watch"),
    Fact("website", "https://acmerobotics.com"),
    Fact("head_count", "45 people", (FactSource(2, "Inside Acme", "https://blog.example/acme-team"),), True),
]


def finished(store: JobStore, *, owner: str | None = "admin", facts: list[Fact] | None = FACTS) -> str:
    job = store.create_job("Acme Robotics", owner)
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.mark_succeeded(
        job.id,
        report_md="# Acme Robotics: investment memo\n",
        provider="openai/gpt",
        figures=FigureCounts(3, 2, 1),
        facts=facts,
    )
    return job.id


def test_a_finished_report_with_its_facts(app: Flask, api_client: FlaskClient) -> None:
    job_id = finished(store_of(app))
    response = api_client.get(f"/api/reports/{job_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["startup"], body["state"], body["provider"]) == (
        job_id,
        "Acme Robotics",
        "SUCCESS",
        "openai/gpt",
    )
    assert body["markdown"] == "# Acme Robotics: investment memo\n"
    assert body["figures"] == {"checked": 3, "supported": 2, "unsupported": 1}
    assert body["website"] == "https://acmerobotics.com" and body["finished_at"].endswith("Z")
    assert [fact["key"] for fact in body["facts"]] == [key for key, _ in FACT_FIELDS]
    head_count = next(fact for fact in body["facts"] if fact["key"] == "head_count")
    assert head_count == {
        "key": "head_count",
        "label": "Head count",
        "value": "45 people",
        "sources": [{"number": 2, "title": "Inside Acme", "url": "https://blog.example/acme-team"}],
        "found": True,
    }
    assert next(fact for fact in body["facts"] if fact["key"] == "founded")["value"] is None


def test_a_report_stored_without_facts_has_none(app: Flask, api_client: FlaskClient) -> None:
    body = api_client.get(f"/api/reports/{finished(store_of(app), facts=None)}").get_json()
    assert body["facts"] is None and body["website"] is None


def test_unknown_and_unfinished_reports_are_json_errors(app: Flask, api_client: FlaskClient) -> None:
    store = store_of(app)
    for unknown in ("00000000-0000-0000-0000-000000000000", "not-an-id"):
        response = api_client.get(f"/api/reports/{unknown}")
        assert response.status_code == 404 and "No report" in response.get_json()["error"]

    queued = store.create_job("Acme Robotics", "admin").id
    response = api_client.get(f"/api/reports/{queued}")
    assert response.status_code == 409
    body = response.get_json()
    assert body["state"] == "PENDING" and body["status_url"] == f"/status/{queued}"
    assert "not finished" in body["error"] and f"/status/{queued}" in body["error"]

    store.mark_failed(queued, error="The provider rejected the key.")
    response = api_client.get(f"/api/reports/{queued}")
    assert response.status_code == 409 and response.get_json()["state"] == "FAILURE"
    assert api_client.post(f"/api/reports/{queued}").status_code == 405


def test_private_reports_are_read_by_their_owner_and_admins_only(private_app: Flask) -> None:
    alices = finished(store_of(private_app), owner="alice")
    alice, bob, admin = logged_in(private_app, "alice"), logged_in(private_app, "bob"), private_app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    assert alice.get(f"/api/reports/{alices}").status_code == 200
    assert admin.get(f"/api/reports/{alices}").status_code == 200
    response = bob.get(f"/api/reports/{alices}")
    assert response.status_code == 404 and "error" in response.get_json()


def test_the_worker_stores_the_facts_the_report_states(
    app: Flask, api_client: FlaskClient, build_worker: Callable[..., ReportsCelery]
) -> None:
    """The demo provider's report, as the worker writes and stores it: its facts read back."""
    worker = build_worker()
    job_id = worker.job_store.create_job("Acme Robotics", "admin").id
    run_report(worker, job_id)
    facts = {fact["key"]: fact for fact in api_client.get(f"/api/reports/{job_id}").get_json()["facts"]}
    assert facts["recommendation"]["value"] == "Take a meeting"
    assert facts["lead_investors"]["value"].endswith("(illustrative)")
    assert facts["founded"]["value"].isdigit() and facts["stage"]["value"]
    assert facts["website"]["value"] is None  # the demo knows no website
    assert all(fact["sources"] == [] and fact["found"] is None for fact in facts.values())  # no sources


def test_the_report_page_shows_the_facts_with_their_citations(app: Flask) -> None:
    store = store_of(app)
    unfound = Fact("total_raised", "$30M", (FactSource(1, "Acme raises", "https://news.example/acme"),), False)
    markup = Fact(
        "business_model", '<img src=x onerror="alert(1)"> per seat', (FactSource(3, "<b>x</b>", "javascript:alert(1)"),)
    )
    with_facts, without = finished(store, facts=[*FACTS, unfound, markup]), finished(store, facts=None)
    client = app.test_client()
    log_in(client)
    raw = client.get(f"/reports/{with_facts}").get_data(as_text=True)
    assert "<img src=x" not in raw and "&lt;img src=x" in raw  # a model's text is text
    assert "javascript:" not in raw and "<b>x</b>" not in raw  # a web page's link and title too
    page = html.unescape(client.get(f"/reports/{with_facts}").get_data(as_text=True))
    table = page.split('<table class="key-facts', 1)[1].split("</table>", 1)[0]
    head_count = table.split(">Head count<", 1)[1].split("</tr>", 1)[0]
    assert "45 people" in head_count and 'href="https://blog.example/acme-team"' in head_count
    assert "⚠" not in head_count
    raised = table.split(">Total raised<", 1)[1].split("</tr>", 1)[0]
    assert "$30M" in raised and "⚠" in raised and 'href="https://news.example/acme"' in raised
    assert "Unknown" in table.split(">Founded<", 1)[1].split("</tr>", 1)[0]
    assert 'class="key-facts' not in client.get(f"/reports/{without}").get_data(as_text=True)
