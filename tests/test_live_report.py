"""The page of a report while it is written, and the fragment it polls, through Flask's test
client: finished sections rendered as the report renders them, the others as placeholders, and the
finished report swapped in once the job succeeds. The browser test (tests/browser/
test_live_report_browser.py) watches the same page fill in with a worker running."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from config import Settings
from tests.conftest import ANALYST_PASSWORD as PASSWORD
from tests.conftest import log_in
from tests.test_dashboard import HTML, HX, app, client, store  # noqa: F401 (fixtures)
from webapp import create_app
from worker.pipeline import TOTAL_STEPS, Checkpoint, Progress
from worker.research import Research
from worker.sources.citations import Source
from worker.store import JobStore

SOURCES = (
    Source(1, "Acme raises", "https://news.example/acme", "Acme raised $12 million in 2025.", "web"),
    Source(2, "Analyst notes", None, "Acme has 40 staff.", "provided"),
)
SNAPSHOT = (
    "## Snapshot\n\n### Key facts\n\n- **Total raised:** $12 million [1]\n- **Head count:** 40 [2]\n\n"
    "Acme <script>alert(1)</script> makes [a link](javascript:alert(1)) robots. It raised $99 million [1]."
)


RESEARCH = Research(sources=SOURCES)


def running(job_store: JobStore, *steps: str, research: Research | None = RESEARCH) -> str:
    """A job in progress that has finished `steps` (each a checkpoint, as the worker stores it)."""
    job = job_store.create_job("Acme")
    job_store.mark_started(job.id, worker="w@h", attempt=1)
    job_store.mark_progress(job.id, Progress(2, TOTAL_STEPS, "Writing the sections: 1 of 11 done"))
    if research is not None:
        job_store.save_research(job.id, research)
    for key in steps:
        job_store.save_checkpoint(job.id, checkpoint(key, SNAPSHOT if key == "snapshot" else f"The {key} text [1]."))
    return job.id


def checkpoint(key: str, text: str) -> Checkpoint:
    return Checkpoint(key=key, text=text, provider="openai", model="gpt-5-mini")


def section(page: str, key: str) -> str:
    return re.search(rf'<section class="live-section[^"]*" id="live-{key}".*?</section>', page, re.S).group(0)


def test_a_running_report_shows_its_finished_sections_rendered_and_the_others_as_being_written(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
) -> None:
    job_id = running(store, "plan", "snapshot")
    page = client.get(f"/reports/{job_id}", headers=HTML).get_data(as_text=True)

    snapshot = section(page, "snapshot")
    assert '<h2 id="sec-snapshot">Snapshot</h2>' in snapshot and "<h3" in snapshot  # its own ## demoted
    assert snapshot.count("<h2") == 1  # the model's repeated heading dropped
    # Citations link to their sources; one without a page (the analyst's notes) stays text.
    assert '<a href="https://news.example/acme" rel="noopener noreferrer nofollow">[1]</a>' in snapshot
    assert "40 [2]" in snapshot
    # Sanitised: raw HTML shown as text, no javascript: link.
    assert "<script>" not in snapshot and "&lt;script&gt;" in snapshot and "javascript:" not in snapshot
    # Figures checked as in the final report: $99 million is not in source 1; its footnote's id is the section's.
    assert "⚠" in snapshot and 'id="fn:snapshot-check-1"' in snapshot

    for key in ("risks", "problem", "synthesis"):
        assert "live-section--waiting" in section(page, key)
    assert "Being written…" in section(page, "risks")
    assert "Written once every section is finished…" in section(page, "synthesis")
    # The table of contents lists the summary and all eleven sections, and the sources.
    toc = re.search(r'<nav class="toc".*?</nav>', page, re.S).group(0)
    assert toc.count("<li>") == 13 and 'href="#sec-risks"' in toc and 'href="#sec-sources"' in toc
    assert '<h2 id="sec-sources">Sources</h2>' in page
    # The progress: the job's card, step and elapsed time, refreshed by the page's poll (not its own).
    assert f"step 2 of {TOTAL_STEPS}: Writing the sections: 1 of 11 done" in page and "Elapsed" in page
    assert f'hx-get="/reports/{job_id}/live?shown=snapshot,sources"' in page and 'hx-trigger="every 2s"' in page
    assert "/card" not in page


def test_a_running_jobs_card_links_to_the_report_being_written(client: FlaskClient, store: JobStore) -> None:  # noqa: F811
    job_id = running(store)
    card = re.search(rf'<article[^>]*id="job-{job_id}".*?</article>', client.get("/").get_data(as_text=True), re.S)
    assert f'<a href="/reports/{job_id}">Acme</a>' in card.group(0)


def test_before_the_plan_every_section_waits_for_it(client: FlaskClient, store: JobStore) -> None:  # noqa: F811
    job_id = running(store, research=None)
    page = client.get(f"/reports/{job_id}", headers=HTML).get_data(as_text=True)
    assert page.count("Waiting for the plan…") == 12 and "sec-sources" not in page
    assert "still being written" in page


def test_the_reader_is_told_of_demo_output_and_of_a_report_without_search(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
) -> None:
    job_id = running(store, research=Research(searched=False, warnings=("The website https://acme.example timed out",)))
    store.save_checkpoint(job_id, Checkpoint(key="plan", text="Plan.", provider="offline", model="demo"))
    for page in (
        client.get(f"/reports/{job_id}", headers=HTML).get_data(as_text=True),
        client.get(f"/reports/{job_id}/live?shown=", headers=HX).get_data(as_text=True),
    ):
        notices = re.search(r'<div class="live-notices".*?</div>', page, re.S).group(0)
        assert "Demo output: not research." in notices and "No sources were searched." in notices
        assert "timed out" in notices and "<a " not in notices


def test_the_poll_swaps_in_only_the_sections_finished_since(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = running(store, "plan", "snapshot")
    store.save_checkpoint(job_id, checkpoint("risks", "## Risks\n\n- High: money [1]."))
    answer = client.get(f"/reports/{job_id}/live?shown=snapshot", headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert body.startswith('<div class="live-progress" id="live-progress"')
    assert f'hx-get="/reports/{job_id}/live?shown=snapshot,risks,sources"' in body  # the next poll knows it
    risks = section(body, "risks")
    assert 'hx-swap-oob="true"' in risks and '<h2 id="sec-risks">Risks</h2>' in risks
    assert '<a href="https://news.example/acme"' in risks
    assert 'id="live-snapshot"' not in body  # already on the page: not swapped again
    assert "Being written…" in section(body, "team")  # placeholders come along (they change)
    assert client.get(f"/reports/{job_id}/live").headers["Location"] == f"/reports/{job_id}"  # without htmx
    assert 'id="live-sources" hx-swap-oob="true"' in body  # the page listed none yet
    assert "Acme raises" in body
    # Once the page lists them, neither they nor the sources are read again for a poll.
    monkeypatch.setattr(store, "load_research", lambda job_id: pytest.fail("the research was read again"))
    again = client.get(f"/reports/{job_id}/live?shown=snapshot,risks,sources", headers=HX).get_data(as_text=True)
    assert "hx-swap-oob" in again and "live-sources" not in again and "Acme raises" not in again


@pytest.mark.parametrize("state", ["PENDING", "STARTED", "PROGRESS", "RETRY"])
def test_while_the_job_is_queued_running_or_due_to_retry_the_page_and_its_poll_keep_polling(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
    state: str,
) -> None:
    job = store.create_job("Acme")
    if state != "PENDING":
        store.mark_started(job.id, worker="w@h", attempt=1)
    if state == "PROGRESS":
        store.mark_progress(job.id, Progress(2, TOTAL_STEPS, "Writing the sections: 1 of 11 done"))
    if state == "RETRY":
        store.mark_retry(job.id, error="The provider timed out", retry_at=datetime.now(UTC) + timedelta(seconds=30))
    store.save_checkpoint(job.id, checkpoint("snapshot", SNAPSHOT))
    assert store.get_job(job.id).state == state
    page = client.get(f"/reports/{job.id}").get_data(as_text=True)
    answer = client.get(f"/reports/{job.id}/live?shown=", headers=HX)
    assert answer.status_code == 200 and "becomes the finished report by itself" in page
    for body in (page, answer.get_data(as_text=True)):
        assert 'hx-trigger="every 2s"' in body and '<h2 id="sec-snapshot">Snapshot</h2>' in section(body, "snapshot")


@pytest.mark.parametrize("shown", ["%00,<script>,,risks,", "snapshot," * 20_000, "sources,sources"])
def test_a_junk_or_huge_shown_is_read_as_what_it_names_and_never_an_error(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
    shown: str,
) -> None:
    job_id = running(store, "plan", "snapshot")
    answer = client.get(f"/reports/{job_id}/live", query_string={"shown": shown}, headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<script>" not in body
    assert f'/reports/{job_id}/live?shown=snapshot,sources"' in body  # only what the job wrote, once each
    assert ('id="live-snapshot"' in body) is ("snapshot" not in shown)


def test_once_the_job_succeeds_the_poll_answers_with_the_finished_report_and_stops(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
) -> None:
    job_id = running(store, "plan", "snapshot")
    store.mark_succeeded(job_id, report_md="# Acme\n\n## Summary\n\nGood [1].\n", provider="o/m")
    answer = client.get(f"/reports/{job_id}/live?shown=snapshot", headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 286  # htmx's "stop polling"; the answer is still swapped in
    assert answer.headers["HX-Retarget"] == "#report" and answer.headers["HX-Reswap"] == "outerHTML"
    assert "HX-Redirect" not in answer.headers and "HX-Refresh" not in answer.headers
    assert body.startswith('<article class="report" id="report">')
    assert f'href="/reports/{job_id}.md"' in body and '<h2 id="sec-summary">Summary</h2>' in body
    assert "hx-trigger" not in body
    # And the page itself is the finished report, its citations still links to their sources.
    page = client.get(f"/reports/{job_id}", headers=HTML).get_data(as_text=True)
    assert "Download .md" in page and "live-section" not in page
    for html in (body, page):
        assert 'Good <a href="https://news.example/acme" rel="noopener noreferrer nofollow">[1]</a>.' in html


@pytest.mark.parametrize(("stop", "words"), [("fail", "could not be written"), ("cancel", "was cancelled")])
def test_a_stopped_report_shows_its_card_and_keeps_its_finished_sections(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
    stop: str,
    words: str,
) -> None:
    job_id = running(store, "plan", "snapshot")
    if stop == "fail":
        store.mark_failed(job_id, error="The provider rejected the API key")
    else:
        store.mark_cancelled(job_id, by="admin")
    answer = client.get(f"/reports/{job_id}/live?shown=snapshot", headers=HX)
    assert answer.status_code == 286 and answer.headers["HX-Retarget"] == "#report"
    for body in (answer.get_data(as_text=True), client.get(f"/reports/{job_id}").get_data(as_text=True)):
        assert words in body and "hx-trigger" not in body
        assert '<h2 id="sec-snapshot">Snapshot</h2>' in section(body, "snapshot")
        assert "Not written: the report stopped" in section(body, "risks")
    if stop == "fail":
        assert "The provider rejected the API key" in body


def test_a_job_asking_which_company_shows_its_question_as_before(client: FlaskClient, store: JobStore) -> None:  # noqa: F811
    job = store.create_job("Acme")
    store.mark_needs_input(job.id, [{"name": "Acme Inc", "website": "https://acme.example", "snippet": ""}])
    page = client.get(f"/reports/{job.id}").get_data(as_text=True)
    assert "Which one is this report about?" in page and "Use this website" in page
    assert "live-section" not in page


def test_a_job_that_comes_to_ask_which_company_swaps_the_page_for_its_question(
    client: FlaskClient,  # noqa: F811
    store: JobStore,  # noqa: F811
) -> None:
    """The page opened while the job was queued: its poll stops, and the reader is not told the
    page fills in by itself (nothing polls it any more) but is given the card that asks."""
    job_id = running(store)
    store.mark_needs_input(job_id, [{"name": "Acme Inc", "website": "https://acme.example", "snippet": ""}])
    answer = client.get(f"/reports/{job_id}/live?shown=", headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 286 and answer.headers["HX-Retarget"] == "#report"
    assert "Which one is this report about?" in body and "Use this website" in body
    assert 'id="report"' in body and "becomes the finished report by itself" not in body


def test_unknown_jobs_are_404_and_a_vanished_one_stops_the_poll(client: FlaskClient) -> None:  # noqa: F811
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/reports/{unknown}", headers=HTML).status_code == 404
    assert client.get(f"/reports/{unknown}/live").status_code == 404
    assert client.get(f"/reports/{unknown}/live", headers=HX).status_code == 286


def test_with_private_reports_another_analyst_cannot_read_a_report_being_written(settings: Settings) -> None:
    settings.private_reports = True
    private = create_app(settings)
    for username in ("bea", "cem"):
        private.extensions["accounts"].create_user(username, PASSWORD)
    bea, cem = private.test_client(), private.test_client()
    log_in(bea, "bea", PASSWORD)
    log_in(cem, "cem", PASSWORD)
    jobs = private.extensions["jobs"]
    job = jobs.store.create_job("Acme", "bea")
    jobs.store.save_checkpoint(job.id, checkpoint("snapshot", "Secret [1]."))
    assert "Secret" in bea.get(f"/reports/{job.id}").get_data(as_text=True)
    for path in (f"/reports/{job.id}", f"/reports/{job.id}/live"):
        response = cem.get(path, headers=HTML)
        assert response.status_code == 404 and "Secret" not in response.get_data(as_text=True)
    jobs.workers.stop()
