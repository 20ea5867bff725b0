"""A CSV of companies as a dashboard batch (`webapp.csv_import`, `POST /jobs` with `companies`):
bad rows named one by one, good rows queued with their own website and notes."""

from __future__ import annotations

import html
import io
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from tests.conftest import log_in
from webapp import create_app
from webapp.csv_import import read_companies
from webapp.validation import ValidationError
from worker.models import Job
from worker.store import JobStore

HX = {"HX-Request": "true"}

MIXED = (
    "Name,Website,Notes,Sector\n"
    "Acme Robotics,acmerobotics.com,Met the founders in May,Robotics\n"
    ",https://nameless.example,,\n"  # row 3: no name
    "Globex,,,Energy\n"
    "\n"  # blank: skipped
    "Initech,not a web address,,\n"  # row 6
    "acme robotics,,,\n"  # row 7: a repeat of row 2
    "Hooli\u202e,,,\n"  # row 8: a direction control
    "Umbrella,umbrella.example,Biotech; ask about the spin-off,\n"
)


def test_good_rows_are_read_with_their_material_and_bad_rows_named() -> None:
    imported = read_companies(MIXED.encode())
    assert [(c.row, c.name) for c in imported.companies] == [(2, "Acme Robotics"), (4, "Globex"), (9, "Umbrella")]
    acme = imported.companies[0].material
    assert acme.website == "https://acmerobotics.com" and acme.notes == "Met the founders in May"
    assert not imported.companies[1].material  # nothing but the name
    assert imported.problems[0] == "Row 3: the name must not be empty."
    assert (
        imported.problems[1] == "Row 6: website 'not a web address' is not a web address such as https://acme.example."
    )
    assert imported.problems[2] == "Row 7: acme robotics is already on row 2."
    assert imported.problems[3].startswith("Row 8: the name contains an invisible direction control")
    assert len(imported.problems) == 4
    assert imported.note == "Ignored the column Sector. Skipped 1 blank row."


def test_excel_files_with_a_bom_semicolons_and_other_column_orders() -> None:
    excel = "\ufeffNOTES;name\r\n„Quote“ & notes;Zeta GmbH\r\n".encode()
    (zeta,) = read_companies(excel).companies
    assert zeta.name == "Zeta GmbH" and zeta.material.notes == "„Quote“ & notes"
    assert [c.name for c in read_companies(b"name\nOnly Co\n").companies] == ["Only Co"]
    # Excel's "Unicode Text": UTF-16 with a byte order mark, tab-separated (was "not a CSV").
    unicode_text = "Name\tWebsite\r\nZürich AG\tzuerich.example\r\n".encode("utf-16")
    (zurich,) = read_companies(unicode_text).companies
    assert zurich.name == "Zürich AG" and zurich.material.website == "https://zuerich.example"


def test_a_crafted_header_row_is_read_in_a_moment() -> None:
    """csv.Sniffer is quadratic in what it reads: this 150 KB header row took minutes, a worker
    held all along. Only the header's first kilobyte is sniffed now."""
    started = time.monotonic()
    with pytest.raises(ValidationError, match="lists no company"):
        read_companies(b"name," + b',"a' * 50_000)
    assert time.monotonic() - started < 5
    # A header ended by a carriage return alone (old Mac files) is the first row, not the whole file.
    assert [c.name for c in read_companies(b"name;notes\rAcme;met in May\r").companies] == ["Acme"]


def test_a_long_bad_website_is_shortened_in_its_message() -> None:
    (problem,) = read_companies(f"name,website\nAcme,{'x' * 3000}\n".encode()).problems
    assert problem == f"Row 2: website '{'x' * 80}…' is not a web address such as https://acme.example."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"company,website\nAcme,acme.example\n", "no “name” column"),
        (b"name\n\n\n", "lists no company"),
        ("name\nZ\u00fcrich AG\n".encode("latin-1"), "not UTF-8"),
        (b"PK\x03\x04\x00\x00binary", "not a CSV"),
        ("name\nA\x00B\n".encode("utf-16"), "not a CSV"),
        (b"name\n" + b"x" * (1024 * 1024), "larger than"),
        (("name\n" + "\n".join(f"Company {n}" for n in range(51))).encode(), "more than the 50 companies"),
        # Bad rows count too: 100,000 of them were as many messages on the page.
        (b"name,website\n" + b",x\n" * 100_000 + b"Acme,\n", "more than the 50 companies"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_as_a_whole(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        read_companies(data)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An analyst's browser, logged in through the form."""
    client = app.test_client()
    log_in(client)
    return client


def jobs_in(app: Flask) -> list[Job]:
    store: JobStore = app.extensions["jobs"].store
    return list(reversed(store.recent_jobs(100)))


def upload(text: str | bytes, name: str = "companies.csv") -> dict[str, object]:
    data = text.encode() if isinstance(text, str) else text
    return {"companies": (io.BytesIO(data), name), "startups": ""}


def test_the_dashboard_queues_the_good_rows_and_lists_the_bad_ones(app: Flask, client: FlaskClient) -> None:
    response = client.post("/jobs", data=upload(MIXED), content_type="multipart/form-data")
    assert response.status_code == 200  # the page itself: the rows' messages would not fit a cookie
    page = html.unescape(response.get_data(as_text=True))
    assert "Queued 3 reports from companies.csv. Ignored the column Sector. Skipped 1 blank row." in page
    assert "4 rows of the CSV file were not queued:" in page
    for problem in read_companies(MIXED.encode()).problems:
        assert f"<li>{problem}</li>" in page
    queued = jobs_in(app)
    assert [(job.startup, job.website, job.notes) for job in queued] == [
        ("Acme Robotics", "https://acmerobotics.com", "Met the founders in May"),
        ("Globex", None, None),
        ("Umbrella", "https://umbrella.example", "Biotech; ask about the spin-off"),
    ]
    assert all(job.created_by == "admin" for job in queued)

    clean = client.post("/jobs", data=upload("name\nHooli\n", "more.csv"), content_type="multipart/form-data")
    assert clean.status_code == 303  # all queued: the dashboard, by a redirect
    assert "Queued 1 report from more.csv." in client.get("/").get_data(as_text=True)


def test_with_htmx_the_cards_and_the_problems_come_back(app: Flask, client: FlaskClient) -> None:
    response = client.post("/jobs", data=upload(MIXED), content_type="multipart/form-data", headers=HX)
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200 and page.count('<article class="card') == 3
    assert "Row 6: website 'not a web address'" in page and "Queued 3 reports" in page


def test_a_file_without_a_usable_row_queues_nothing_and_says_why(app: Flask, client: FlaskClient) -> None:
    cases = [
        (upload("name,website\n,acme.example\n"), "no row of the CSV file can be used", "Row 2: the name"),
        (upload(b"\x00\x01", "deck.pdf"), "not a CSV", ""),
        ({**upload("name\nAcme\n"), "startups": "Globex"}, "import a CSV, or type names", ""),
        ({**upload("name\nAcme\n"), "website": "acme.example"}, "import a CSV, or type names", ""),
    ]
    for data, message, row in cases:
        response = client.post("/jobs", data=data, content_type="multipart/form-data")
        assert response.status_code == 400
        page = html.unescape(response.get_data(as_text=True))
        assert "Nothing was queued" in page and message in page
        assert row in page
    assert jobs_in(app) == []


def test_the_live_jobs_limit_holds_for_a_csv(settings: Settings) -> None:
    settings.max_live_jobs_per_user = 2
    app = create_app(settings)
    client = app.test_client()
    log_in(client)
    response = client.post("/jobs", data=upload("name\nA Co\nB Co\nC Co\n"), content_type="multipart/form-data")
    assert response.status_code == 429 and "the limit is 2 at once" in response.get_data(as_text=True)
    assert jobs_in(app) == []
    app.extensions["jobs"].workers.stop()


def test_the_form_offers_the_import(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<input id="companies" name="companies" type="file" accept=".csv,text/csv">' in page
