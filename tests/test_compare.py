"""Companies side by side: `/compare`, `/api/compare` and the CSV and XLSX downloads, from finished
reports with key facts stored as the worker stores them (`worker.facts`)."""

from __future__ import annotations

import csv
import html
import io

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from tests.conftest import log_in, logged_in, store_of
from webapp import create_app
from worker.facts import FACT_FIELDS, Fact, FactSource, dump_facts
from worker.models import Job
from worker.store import JobStore

NEVER_ISSUED = "00000000-0000-0000-0000-000000000000"
NEWS = FactSource(2, "Acme raises $12M", "https://news.example/acme-raises")
NOTES = FactSource(1, "Analyst notes")  # provided by the analyst: no URL


def finished(store: JobStore, name: str, facts: list[Fact] | None = None, owner: str = "admin") -> Job:
    """A finished report on `name`, with `facts` stored as the worker stores them (or none)."""
    job = store.create_job(name, owner)
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.mark_succeeded(job.id, report_md=f"# {name}: investment memo\n\n## Summary\n\nText.\n", provider="offline")
    if facts is not None:
        with store.session() as session:
            session.get(Job, job.id).facts = dump_facts(facts)
    return store.get_job(job.id)


def acme_facts(**values: str) -> list[Fact]:
    return [
        Fact("recommendation", values.get("recommendation", "Take a meeting"), (NEWS,), None),
        Fact("stage", values.get("stage", "Series A"), (NEWS, NOTES), True),
        Fact("total_raised", values.get("total_raised", "$12M"), (NEWS,), False),
    ]


@pytest.fixture
def client(api_client: FlaskClient) -> FlaskClient:
    return api_client


@pytest.fixture
def three(app: Flask) -> list[Job]:
    store = store_of(app)
    return [
        finished(store, "Acme Robotics", acme_facts()),
        finished(store, "Globex", acme_facts(recommendation="Pass", stage="Seed", total_raised="$2M")),
        finished(store, "Initech"),  # written before facts were kept
    ]


def test_the_page_has_a_column_per_company_and_the_recommendation_row_first(
    client: FlaskClient, three: list[Job]
) -> None:
    ids = ",".join(job.id for job in three)
    response = client.get(f"/compare?ids={ids}", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    for job in three:
        assert f'<a href="/reports/{job.id}">{job.startup}</a>' in page
    rows = page.split('<tr class="compare__row')[1:]
    assert [row.split('data-fact="')[1].split('"')[0] for row in rows] == [key for key, _ in FACT_FIELDS]
    recommendation = rows[0]
    assert "Take a meeting" in recommendation and "Pass" in recommendation
    stage = rows[[key for key, _ in FACT_FIELDS].index("stage")]
    assert '<a href="https://news.example/acme-raises" title="Acme raises $12M" rel="noopener">[2]</a>' in stage
    assert '<span title="Analyst notes">[1]</span>' in stage  # the analyst's notes have no link
    raised = rows[[key for key, _ in FACT_FIELDS].index("total_raised")]
    assert raised.count("⚠") == 2  # Acme's and Globex's figure was not found in its source
    assert "facts were not kept for this report" in page  # Initech
    assert stage.count("—") == 1  # Initech's cell
    assert f"/compare.csv?ids={ids}" in page.replace("%2C", ",")
    assert f"/compare.xlsx?ids={ids}" in page.replace("%2C", ",")


def test_values_names_and_sources_from_the_web_are_text_and_only_web_links_are_links(
    app: Flask, client: FlaskClient
) -> None:
    """Facts come from web pages and a model: markup in them is shown, never run."""
    store = store_of(app)
    hostile_sources = (
        FactSource(1, '"><img src=x onerror=alert(1)>', "javascript:alert(1)"),
        FactSource(2, "Data URL", "data:text/html,<script>alert(2)</script>"),
        FactSource(3, "Fine", "https://news.example/fine"),
    )
    facts = [Fact("recommendation", "<script>alert(3)</script>", hostile_sources, None)]
    evil = finished(store, "<b onmouseover=alert(4)>Evil</b>", facts)
    globex = finished(store, "Globex", acme_facts())
    page = client.get(f"/compare?ids={evil.id},{globex.id}").get_data(as_text=True)
    assert "<script>alert(3)" not in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "<b onmouseover" not in page and "<img src=x" not in page
    assert 'href="javascript:' not in page and 'href="data:' not in page
    assert '<a href="https://news.example/fine" title="Fine" rel="noopener">[3]</a>' in page


def test_repeated_ids_work_as_the_reports_list_sends_them(client: FlaskClient, three: list[Job]) -> None:
    query = "&".join(f"ids={job.id}" for job in three[:2]) + f"&ids={three[0].id}"  # a repeat counts once
    data = client.get(f"/api/compare?{query}").get_json()
    assert [company["startup"] for company in data["companies"]] == ["Acme Robotics", "Globex"]


def test_the_api_gives_the_same_as_json(client: FlaskClient, three: list[Job]) -> None:
    data = client.get(f"/api/compare?ids={','.join(job.id for job in three)}").get_json()
    assert [fact["key"] for fact in data["facts"]] == [key for key, _ in FACT_FIELDS]
    acme, _, initech = data["companies"]
    assert acme["job_id"] == three[0].id and acme["report_url"].endswith(f"/reports/{three[0].id}")
    assert acme["facts_kept"] is True and acme["facts"][0]["value"] == "Take a meeting"
    stage = next(fact for fact in acme["facts"] if fact["key"] == "stage")
    assert stage["sources"] == [NEWS.to_dict(), NOTES.to_dict()] and stage["found"] is True
    assert initech["facts_kept"] is False and initech["facts"] is None


def test_what_cannot_be_compared_is_named(app: Flask, client: FlaskClient, three: list[Job]) -> None:
    store = store_of(app)
    running = store.create_job("Hooli", "admin")
    a, b = three[0].id, three[1].id
    cases = [
        ("", 400, "at least 2", []),
        (a, 400, "at least 2", []),
        (f"{a},{a}", 400, "at least 2", []),
        (f"{a},{NEVER_ISSUED},nonsense", 404, NEVER_ISSUED, [NEVER_ISSUED, "nonsense"]),
        (f"{a},{running.id}", 409, running.id, [running.id]),
        (",".join([a, b, *(finished(store, f"Co {n}").id for n in range(19))]), 400, "at most 20", []),
    ]
    for ids, status, words, bad in cases:
        response = client.get(f"/api/compare?ids={ids}")
        assert response.status_code == status, (ids, response.get_data(as_text=True))
        assert words in response.get_json()["error"] and response.get_json()["ids"] == bad
        for download in ("/compare.csv", "/compare.xlsx"):
            refused = client.get(f"{download}?ids={ids}")
            assert refused.status_code == status and words in refused.get_json()["error"]
        page = client.get(f"/compare?ids={ids}", headers={"Accept": "text/html"})
        assert page.status_code == status and words in html.unescape(page.get_data(as_text=True))


def test_compare_max_is_a_setting(settings: Settings) -> None:
    settings.compare_max = 2
    app = create_app(settings)
    store = store_of(app)
    client = app.test_client()
    log_in(client)
    ids = [finished(store, name).id for name in ("A Co", "B Co", "C Co")]
    assert client.get(f"/api/compare?ids={','.join(ids[:2])}").status_code == 200
    refused = client.get(f"/api/compare?ids={','.join(ids)}")
    assert refused.status_code == 400 and "at most 2" in refused.get_json()["error"]
    assert "Tick 2 to 2 reports" in client.get("/reports").get_data(as_text=True)
    app.extensions["jobs"].workers.stop()


def test_a_private_report_of_another_user_is_not_compared(private_app: Flask) -> None:  # noqa: F811 (the fixture)
    store = store_of(private_app)
    alices = [finished(store, name, acme_facts(), owner="alice") for name in ("Acme Robotics", "Globex")]
    bobs = finished(store, "Initech", acme_facts(), owner="bob")
    bob = logged_in(private_app, "bob")
    refused = bob.get(f"/api/compare?ids={alices[0].id},{bobs.id}")
    assert refused.status_code == 404 and refused.get_json()["ids"] == [alices[0].id]
    assert "Acme" not in refused.get_data(as_text=True)
    alice = logged_in(private_app, "alice")
    assert alice.get(f"/api/compare?ids={alices[0].id},{alices[1].id}").status_code == 200


def test_private_reports_do_not_leak_through_the_page_the_files_or_the_docx(
    private_app: Flask,  # noqa: F811 (the fixture)
) -> None:
    store = store_of(private_app)
    alices = [finished(store, name, acme_facts(), owner="alice") for name in ("Acme Robotics", "Globex")]
    bob = logged_in(private_app, "bob")
    ids = f"{alices[0].id},{alices[1].id}"
    for url in (f"/compare?ids={ids}", f"/compare.csv?ids={ids}", f"/compare.xlsx?ids={ids}"):
        refused = bob.get(url)
        assert refused.status_code == 404, url
        assert b"Acme" not in refused.data and b"Take a meeting" not in refused.data, url
    docx = bob.get(f"/reports/{alices[0].id}.docx")
    assert docx.status_code == 404 and "error" in docx.get_json()
    alice = logged_in(private_app, "alice")
    assert alice.get(f"/compare.xlsx?ids={ids}").status_code == 200
    assert alice.get(f"/reports/{alices[0].id}.docx").status_code == 200


def test_the_reports_list_ticks_reports_into_a_compare_form(client: FlaskClient, three: list[Job]) -> None:
    page = client.get("/reports").get_data(as_text=True)
    assert '<form id="compare-form" class="compare-form" method="get" action="/compare">' in page
    for job in three:
        assert f'type="checkbox" name="ids" value="{job.id}" form="compare-form"' in page
        assert f'href="/reports/{job.id}.docx"' in page


HOSTILE = ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
#: Formulas behind leading spaces or a line break: a spreadsheet that trims them on import meets "=".
HOSTILE_INDENTED = ["  =1+1", "\n@SUM(A1)"]
#: A formula behind control characters, which XML cannot hold and a spreadsheet may drop.
HOSTILE_CONTROL = "\x00\x01=2+2"


@pytest.fixture
def hostile(app: Flask) -> list[Job]:
    """Two reports whose name and facts would run as formulas if written as they are."""
    store = store_of(app)
    facts = [Fact("recommendation", HOSTILE[0]), Fact("stage", HOSTILE[1]), Fact("total_raised", HOSTILE[2])]
    facts += [Fact("head_count", HOSTILE[3]), Fact("founded", HOSTILE[4]), Fact("headquarters", HOSTILE[5])]
    facts += [Fact("website", HOSTILE_INDENTED[0]), Fact("business_model", HOSTILE_INDENTED[1])]
    facts += [Fact("last_round", HOSTILE_CONTROL)]
    return [finished(store, "=cmd|' /C calc'!A0", facts), finished(store, "Globex", acme_facts())]


def test_the_csv_has_a_row_per_company_and_no_formula(client: FlaskClient, hostile: list[Job]) -> None:
    response = client.get(f"/compare.csv?ids={hostile[0].id},{hostile[1].id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="comparison.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    header, evil, globex = rows
    labels = [label for _, label in FACT_FIELDS]
    assert header[:4] == ["Company", "Report", "Recommendation", "Recommendation sources"]
    assert header[2::2] == labels
    assert evil[0] == "'=cmd|' /C calc'!A0" and evil[1].endswith(f"/reports/{hostile[0].id}")
    for cell in evil + globex:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert {"'" + text for text in HOSTILE + HOSTILE_INDENTED} | {"'=2+2"} <= set(evil)
    assert globex[header.index("Stage")] == "Series A"
    assert globex[header.index("Stage sources")] == "[2] https://news.example/acme-raises\n[1] Analyst notes (provided)"
    assert "not found" in globex[header.index("Total raised")]


def test_the_xlsx_has_a_row_per_company_and_no_formula(client: FlaskClient, hostile: list[Job]) -> None:
    response = client.get(f"/compare.xlsx?ids={hostile[0].id},{hostile[1].id}")
    assert response.status_code == 200
    assert 'filename="comparison.xlsx"' in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header, evil, globex = values
    assert header[2::2] == [label for _, label in FACT_FIELDS]
    assert evil[0] == "'=cmd|' /C calc'!A0" and globex[0] == "Globex"
    assert {"'" + text for text in HOSTILE + HOSTILE_INDENTED} | {"'=2+2"} <= set(evil)
    assert sheet.cell(row=3, column=2).hyperlink.target.endswith(f"/reports/{hostile[1].id}")
