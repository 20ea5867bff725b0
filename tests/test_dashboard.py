"""The dashboard and report pages through Flask's test client, with a real Redis and no worker.
The browser tests (tests/browser/) drive the same pages in Chromium with a worker running."""

from __future__ import annotations

import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from config import Settings
from tests.conftest import ADMIN_PASSWORD, RedisServer, csrf_token_of, free_port, log_in, make_settings
from tests.fakes.pdf_builder import minimal_pdf
from tests.fakes.search_server import PDF_SENTENCE
from webapp import create_app
from worker.pipeline import Progress
from worker.store import JobStore

HX = {"HX-Request": "true"}
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def app(settings: Settings) -> Flask:
    settings.flower_url = "https://flower.example/"
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An analyst's browser: logged in, sending the CSRF token like the pages do."""
    client = app.test_client()
    log_in(client)
    return client


@pytest.fixture
def store(app: Flask) -> JobStore:
    return app.extensions["jobs"].store


def finished(store: JobStore, name: str, report: str = "# T\n\n## Summary\n\nGood.\n") -> str:
    job = store.create_job(name)
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.mark_succeeded(job.id, report_md=report, provider="offline/demo")
    return job.id


def test_dashboard_shows_the_form_the_navbar_and_cards_newest_first(client: FlaskClient, store: JobStore) -> None:
    old = finished(store, "Older Co")
    live = store.create_job("Newer Co").id
    page = client.get("/").get_data(as_text=True)
    assert 'name="startups"' in page and 'action="/jobs"' in page
    assert 'href="https://flower.example/"' in page and ">Reports<" in page and ">Dashboard<" in page
    assert page.index(f"job-{live}") < page.index(f"job-{old}")
    live_card = re.search(rf'<article[^>]*id="job-{live}"[^>]*>', page).group(0)
    done_card = re.search(rf'<article[^>]*id="job-{old}"[^>]*>', page).group(0)
    assert 'hx-trigger="every 2s"' in live_card and "hx-get" in live_card
    assert "hx-get" not in done_card and "hx-trigger" not in done_card
    assert "vendor/htmx-2.0.11.min.js" in page


def test_names_are_escaped_in_cards(client: FlaskClient, store: JobStore) -> None:
    store.create_job("<script>alert(1)</script>")
    page = client.get("/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_plain_form_post_redirects_and_flashes_what_was_queued(
    client: FlaskClient, store: JobStore, clean_redis: RedisServer
) -> None:
    response = client.post("/jobs", data={"startups": "Acme\n\nZeta\nacme"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert [j.startup for j in store.recent_jobs(10)] == ["Zeta", "Acme"]
    assert clean_redis.client().llen("celery") == 2
    page = client.get("/").get_data(as_text=True)
    assert "Queued 2 reports. Dropped 1 repeated name and 1 blank line." in page
    assert "Queued 2 reports" not in client.get("/").get_data(as_text=True)  # shown once


def test_htmx_post_returns_the_new_cards_and_the_form_out_of_band(client: FlaskClient, store: JobStore) -> None:
    response = client.post("/jobs", data={"startups": "Alpha\nBeta\nGamma"}, headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    ids = [j.id for j in store.recent_jobs(10)]
    positions = [body.index(f'id="job-{job_id}"') for job_id in ids]
    assert positions == sorted(positions)  # newest first, as they go to the top of the list
    assert 'id="submit-form"' in body and 'hx-swap-oob="true"' in body
    assert "Queued 3 reports." in body
    assert "<html" not in body  # a fragment, not a page


@pytest.mark.parametrize("headers", [HX, {}])
def test_a_bad_batch_queues_nothing_and_keeps_the_text(
    client: FlaskClient, store: JobStore, headers: dict[str, str]
) -> None:
    text = "\n".join(f"Startup {i}" for i in range(51))
    response = client.post("/jobs", data={"startups": text}, headers=headers)
    body = response.get_data(as_text=True)
    assert response.status_code == (200 if headers else 400)
    assert "51 names is more than the 50" in body
    assert "Startup 50</textarea>" in body
    assert store.recent_jobs(100) == []


def test_without_redis_the_page_says_so_and_keeps_the_names(database_url: str, tmp_path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}"
    settings = make_settings(
        redis_url=dead_redis, database_url=database_url, data_dir=tmp_path, admin_password=ADMIN_PASSWORD
    )
    app = create_app(settings)
    client = app.test_client()
    log_in(client)
    response = client.post("/jobs", data={"startups": "Acme\nZeta"})
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Redis" in body and "unreachable" in body and "Acme\nZeta</textarea>" in body
    assert app.extensions["jobs"].store.recent_jobs(10) == []


def test_card_fragment_follows_the_job(client: FlaskClient, store: JobStore) -> None:
    job = store.create_job("Acme")
    assert "Queued" in client.get(f"/jobs/{job.id}/card").get_data(as_text=True)
    store.mark_progress(job.id, Progress(step=5, total=13, label="Market size"))
    body = client.get(f"/jobs/{job.id}/card").get_data(as_text=True)
    assert "Researching — step 5 of 13: Market size" in body and 'value="38"' in body
    store.mark_succeeded(job.id, report_md="# R", provider="p")
    body = client.get(f"/jobs/{job.id}/card").get_data(as_text=True)
    assert "Done" in body and "hx-trigger" not in body and f"/reports/{job.id}.md" in body
    assert client.get("/jobs/00000000-0000-0000-0000-000000000000/card").status_code == 404


def test_a_polling_card_whose_job_vanished_stops_polling(client: FlaskClient, store: JobStore) -> None:
    job = store.create_job("Vanishing Ltd")
    store.delete_job(job.id)
    response = client.get(f"/jobs/{job.id}/card", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    # htmx swaps a 286 answer in (a 404 it would not) and stops the element's polling.
    assert response.status_code == 286
    assert "This job no longer exists." in body and "hx-trigger" not in body


def test_a_poll_costs_two_primary_key_reads_and_nothing_from_redis(
    app: Flask, client: FlaskClient, store: JobStore, clean_redis: RedisServer
) -> None:
    engine = store.engine
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    redis_client = clean_redis.client()

    def commands() -> int:
        return int(redis_client.info("stats")["total_commands_processed"])

    live = store.create_job("Live")
    done = finished(store, "Done")
    for job_id in (live.id, done):
        client.get(f"/jobs/{job_id}/card")  # warm up pools and caches
        used = []
        # Redis counts every client's commands (apps of earlier tests may still ping the workers),
        # and others can only add to the count: the fewest of a few tries bounds this request's own.
        for _ in range(5):
            statements.clear()
            before = commands()
            assert client.get(f"/jobs/{job_id}/card").status_code == 200
            used.append(commands() - before - 1)  # minus the INFO of `before`
            # The job's row, and the logged-in user's by primary key (a removed user is out at once).
            assert len(statements) == 2 and all(s.lstrip().upper().startswith("SELECT") for s in statements)
            assert "FROM users" in statements[0] and "FROM jobs" in statements[1], statements
        assert min(used) == 0, used


def test_retry_queues_a_failed_startup_again(client: FlaskClient, store: JobStore) -> None:
    job = store.create_job("Broken Co")
    store.mark_failed(job.id, error="The provider rejected the key.")
    page = client.get("/").get_data(as_text=True)
    assert "Failed: The provider rejected the key." in page and f"/jobs/{job.id}/retry" in page
    response = client.post(f"/jobs/{job.id}/retry", headers=HX)
    assert response.status_code == 200
    newest = store.recent_jobs(1)[0]
    assert newest.id != job.id and newest.startup == "Broken Co" and newest.state == "PENDING"
    assert f'id="job-{newest.id}"' in response.get_data(as_text=True)
    # A second click (another tab, a double click) is not paid for twice: same new job.
    second = client.post(f"/jobs/{job.id}/retry", headers=HX)
    assert f'id="job-{newest.id}"' in second.get_data(as_text=True)
    assert len(store.recent_jobs(10)) == 2
    assert "Retried as a new job" in client.get("/").get_data(as_text=True)
    # Only failed jobs can be retried; the refusal keeps the card in place, with the reason.
    again = client.post(f"/jobs/{newest.id}/retry")
    assert again.status_code == 409 and "Only a failed job" in again.get_data(as_text=True)
    in_place = client.post(f"/jobs/{newest.id}/retry", headers=HX).get_data(as_text=True)
    assert f'id="job-{newest.id}"' in in_place and "Only a failed job" in in_place


def test_form_posts_from_other_sites_are_refused(app: Flask, client: FlaskClient, store: JobStore) -> None:
    """Another site can make the analyst's browser post the form with its cookie, but it cannot read
    the page's CSRF token: such a post is refused and queues nothing (SameSite=Lax keeps the cookie
    off most of them anyway)."""
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", **HTML}
    response = client.post("/jobs", data={"startups": "Acme"}, headers=cross_site)
    assert response.status_code == 403 and "CSRF check failed" in response.get_data(as_text=True)
    assert store.recent_jobs(10) == []
    token = csrf_token_of(client.get("/").get_data(as_text=True))
    assert client.post("/jobs", data={"startups": "Acme", "csrf_token": token}).status_code == 303


def test_report_page_renders_a_document(client: FlaskClient, store: JobStore) -> None:
    report = "# Acme: investment memo\n\n## Summary\n\nGood.\n\n## Competition\n\n| A | B |\n|---|---|\n| 1 | 2 |\n"
    job_id = finished(store, "Acme & Co", report)
    page = client.get(f"/reports/{job_id}").get_data(as_text=True)
    assert '<h1 class="report__title">Acme &amp; Co</h1>' in page
    assert 'href="#sec-competition"' in page and '<h2 id="sec-competition">Competition</h2>' in page
    assert "<table>" in page and f'href="/reports/{job_id}.md"' in page
    assert "offline/demo" in page and "Model calls" in page


def test_report_page_of_a_live_job_shows_its_card(client: FlaskClient, store: JobStore) -> None:
    job = store.create_job("Acme")
    page = client.get(f"/reports/{job.id}").get_data(as_text=True)
    assert "still being written" in page and f'id="job-{job.id}"' in page


def test_unknown_pages_are_html_for_browsers_and_json_for_scripts(client: FlaskClient) -> None:
    page = client.get("/reports/00000000-0000-0000-0000-000000000000", headers=HTML)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Back to the dashboard" in page.get_data(as_text=True)
    assert client.get("/nowhere", headers=HTML).mimetype == "text/html"
    assert client.get("/nowhere").is_json
    assert client.get("/status/nope", headers=HTML).is_json  # the API stays JSON


def test_reports_are_searchable_and_paginated(client: FlaskClient, store: JobStore) -> None:
    for i in range(23):
        finished(store, f"Fintech {i:02d}")
    finished(store, "Ünïcødé GmbH")
    store.create_job("Fintech Live")  # not finished: not a report yet
    first = client.get("/reports").get_data(as_text=True)
    assert "24 reports" in first and "Page 1 of 2" in first and "Fintech Live" not in first
    second = client.get("/reports?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count('class="report-list__item"') == 4
    found = client.get("/reports?q=fintech 0").get_data(as_text=True)
    assert found.count('class="report-list__item"') == 10
    assert "Ünïcødé GmbH" in client.get("/reports?q=ÜNÏ").get_data(as_text=True)
    none = client.get("/reports?q=100%25").get_data(as_text=True)
    assert "No report matches" in none
    for odd in ("abc", "²", "0", "-1", "99999999999999999999"):
        assert "Page 1 of 2" in client.get(f"/reports?page={odd}").get_data(as_text=True), odd
    assert "Page 2 of 2" in client.get("/reports?page=4000").get_data(as_text=True)


def test_the_form_takes_a_website_notes_and_a_pdf_for_one_startup(client: FlaskClient, store: JobStore) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'hx-encoding="multipart/form-data"' in page
    assert 'name="website"' in page and 'name="notes"' in page and 'name="document"' in page

    response = client.post(
        "/jobs",
        data={
            "startups": "Acme Robotics",
            "website": "https://acme.example",
            "notes": "Three pilots.",
            "document": (io.BytesIO(minimal_pdf([[PDF_SENTENCE]])), "deck.pdf"),
        },
        content_type="multipart/form-data",
        headers=HX,
    )
    assert response.status_code == 200 and "Queued 1 report" in response.get_data(as_text=True)
    [job] = store.recent_jobs(5)
    material = store.load_material(job.id)
    assert material.website == "https://acme.example" and material.notes == "Three pilots."
    assert [d.filename for d in material.documents] == ["deck.pdf"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"startups": "Acme\nZeta", "notes": "For which one?"}, "belong to one startup"),
        ({"startups": "Acme", "website": "ftp://acme.example"}, "http or https"),
        ({"startups": "Acme", "document": b"plain text"}, "notes.pdf: "),
    ],
)
def test_bad_material_on_the_form_queues_nothing_and_keeps_what_was_typed(
    client: FlaskClient, store: JobStore, fields: dict, words: str
) -> None:
    data = dict(fields)
    if "document" in data:  # a fresh file for each run: the test client closes the one it sends
        data["document"] = (io.BytesIO(data["document"]), "notes.pdf")
    response = client.post("/jobs", data=data, content_type="multipart/form-data", headers=HX)
    html = response.get_data(as_text=True)
    assert words in html and "Nothing was queued" in html
    assert store.recent_jobs(5) == []
    assert fields["startups"].split("\n")[0] in html  # the names stay in the box
    if "document" in fields:
        assert "Choose the document again" in html


def test_the_report_page_shows_the_sources_as_links_and_how_many_citations_were_removed(
    client: FlaskClient, store: JobStore
) -> None:
    report = (
        "# Acme\n\n## Summary\n\nGood [1].\n\n## Sources\n\n"
        "1. Acme raises — [https://news.example/acme](https://news.example/acme) — accessed 2026-11-28\n"
    )
    job_id = store.create_job("Acme").id
    store.mark_succeeded(job_id, report_md=report, provider="openai/gpt-5-mini", citations_removed=2)
    page = client.get(f"/reports/{job_id}", headers=HTML).get_data(as_text=True)
    assert "2 unsupported citations removed" in page
    assert '<a href="https://news.example/acme" rel="noopener noreferrer nofollow">' in page


def test_fullwidth_and_zero_width_variants_join_the_live_job_of_the_plain_name(
    client: FlaskClient, store: JobStore
) -> None:
    client.post("/jobs", data={"startups": "Tesla"})
    for variant in ("Ｔｅｓｌａ", "T\u200besla"):
        body = client.post("/jobs", data={"startups": variant}, headers=HX).get_data(as_text=True)
        assert "Queued 0 reports." in body and "Already being written, so not started again: Tesla" in body
    assert [job.startup for job in store.recent_jobs(10)] == ["Tesla"]


@pytest.mark.parametrize(
    ("names", "words"),
    [
        ("Acme\nTesla\u202e", "Line 2 contains an invisible direction control"),
        ("Теsla", "Line 1 mixes Latin and Cyrillic letters in one word (“Теsla”)"),  # a Cyrillic Т
    ],
)
@pytest.mark.parametrize("headers", [HX, {}])
def test_a_direction_control_or_mixed_alphabets_queue_nothing_and_keep_the_names(
    client: FlaskClient, store: JobStore, names: str, words: str, headers: dict[str, str]
) -> None:
    response = client.post("/jobs", data={"startups": names}, headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == (200 if headers else 400)
    assert f"Nothing was queued. {words}" in html and html.count("Nothing was queued") == 1
    assert f"{names}</textarea>" in html
    assert store.recent_jobs(5) == []
