"""The dashboard as an analyst uses it, in headless Chromium against the real stack."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageWatch, log_in, screenshot
from tests.fakes.pdf_builder import minimal_pdf
from tests.fakes.search_server import PDF_SENTENCE, FakeSearchServer
from tests.test_identity import two_companies
from tests.test_pipeline import EXPECTED_HEADINGS
from worker.store import JobStore

pytestmark = pytest.mark.browser

STEP_DELAY = "1.5"  # seconds per step: the plan, the sections (at once) and the summary outlast a 2 s poll


def card(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("article.card").filter(has=page.locator(".card__title", has_text=name))


def watch_states(page: Page, name: str, until: str, timeout: float = 60) -> list[str]:
    """The card's states, as the page shows them, until it reaches `until`."""
    states: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = card(page, name).first.get_attribute("data-state", timeout=5000)
        if not states or states[-1] != state:
            states.append(state)
        if state == until:
            return states
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {until}: {states}")


def test_submit_watch_progress_open_and_download(page: Page, start_worker, api_server: str, tmp_path: Path) -> None:
    page.goto(api_server + "/")
    page.evaluate("window.__sameDocument = true")
    page.fill("#startups", "TeslaAI")
    page.click("#submit-form button[type=submit]")

    # No worker yet: the card appears at the top, queued, without a page load.
    expect(card(page, "TeslaAI")).to_have_count(1)
    expect(card(page, "TeslaAI").locator(".card__status")).to_have_text("Queued")
    expect(page.locator(".notice--ok")).to_have_text("Queued 1 report.")
    expect(page.locator("#startups")).to_have_value("")

    start_worker(OFFLINE_STEP_DELAY=STEP_DELAY)
    states = watch_states(page, "TeslaAI", "SUCCESS")
    assert "PROGRESS" in states and states[-1] == "SUCCESS", states  # it was PENDING above
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(card(page, "TeslaAI").locator(".card__status")).to_have_text("Done")

    # The report page: every section heading, a table of contents, the download.
    card(page, "TeslaAI").get_by_role("link", name="Open report").click()
    expect(page.locator("h1.report__title")).to_have_text("TeslaAI")
    headings = page.locator(".report__body h2").all_inner_texts()
    assert headings == ["Summary", *EXPECTED_HEADINGS]
    assert page.locator(".toc a").count() == len(headings)
    expect(page.locator(".report__body blockquote")).to_contain_text("Demo output")
    screenshot(page, "report-laptop.png")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download .md").click()
    download = download_info.value
    assert download.suggested_filename == "teslaai-report.md"
    text = Path(download.path()).read_text()
    assert text.startswith("# TeslaAI: investment memo")
    assert all(f"## {h}" in text for h in EXPECTED_HEADINGS)


def test_a_batch_makes_one_card_per_name_and_shows_progress(page: Page, start_worker, api_server: str) -> None:
    # Each stage at least 2 s: the cards poll every 2 s, and a report all of whose sections run at
    # once would otherwise pass through PROGRESS between two polls on a fast machine.
    start_worker(OFFLINE_STEP_DELAY="2", concurrency=3)
    page.goto(api_server + "/")
    page.fill("#startups", "Acme Robotics\nNorthwind Health\n\nacme robotics\nBlue Quarry")
    page.click("#submit-form button[type=submit]")
    expect(page.locator("article.card")).to_have_count(3)
    note = "Queued 3 reports. Dropped 1 repeated name and 1 blank line."
    expect(page.locator(".notice--ok")).to_have_text(note)
    titles = page.locator(".card__title").all_inner_texts()
    assert titles == ["Blue Quarry", "Northwind Health", "Acme Robotics"]

    expect(page.locator("article.card[data-state=PROGRESS]").first).to_be_visible(timeout=15000)
    expect(page.locator(".card__status").first).to_contain_text("Researching — step")
    screenshot(page, "dashboard-laptop.png")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "dashboard-phone.png")
    for name in ("Acme Robotics", "Northwind Health", "Blue Quarry"):
        watch_states(page, name, "SUCCESS")


def test_scripts_in_names_and_report_bodies_never_run(
    page: Page, watch: PageWatch, start_worker, api_server: str, settings
) -> None:
    names = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
    start_worker(OFFLINE_STEP_DELAY="0.05")
    page.goto(api_server + "/")
    page.fill("#startups", "\n".join(names))
    page.click("#submit-form button[type=submit]")
    for name in names:
        watch_states(page, name, "SUCCESS")
        expect(card(page, name).locator(".card__title")).to_have_text(name)
    assert page.locator("article.card img").count() == 0

    card(page, names[1]).get_by_role("link", name="Open report").click()
    expect(page.locator("h1.report__title")).to_have_text(names[1])
    expect(page.locator(".report__body")).to_contain_text(names[1])
    assert page.locator(".report__body img, .report__body script").count() == 0

    # A provider's answer is untrusted: a report body full of markup renders as harmless text.
    store = JobStore(settings.database_url)
    job = store.create_job("Hostile Answers Ltd")
    hostile = (
        "# Hostile\n\n## Summary\n\n<script>alert(3)</script>\n\n<img src=x onerror=alert(4)>\n\n"
        "[click me](javascript:alert(5)) [data](data:text/html,<script>alert(6)</script>)\n\n"
        '<a href="https://example.com" onmouseover="alert(7)">hover</a>\n'
    )
    store.mark_succeeded(job.id, report_md=hostile, provider="hostile/1")
    page.goto(f"{api_server}/reports/{job.id}")
    body = page.locator(".report__body")
    expect(body).to_contain_text("<script>alert(3)</script>")
    expect(body).to_contain_text("<img src=x onerror=alert(4)>")
    assert body.locator("script, img, [onmouseover]").count() == 0
    for link in body.locator("a").all():
        href = link.get_attribute("href")
        assert href is None or href.startswith("https://"), href
        link.hover()
        link.click(modifiers=["Control"])  # never navigates this page anywhere
    page.wait_for_timeout(300)
    assert watch.dialogs == []


def test_fifty_cards_with_forty_five_finished_poll_at_most_five_times_an_interval(
    page: Page, api_server: str, settings
) -> None:
    store = JobStore(settings.database_url)
    live_ids = set()
    for i in range(50):
        job = store.create_job(f"Company {i:02d}")
        if i % 10 == 0:
            live_ids.add(job.id)  # 5 of them stay queued: no worker runs in this test
        else:
            store.mark_succeeded(job.id, report_md="# Done\n", provider="offline/demo")
    polls: list[tuple[float, str]] = []
    page.on(
        "request",
        lambda r: (
            polls.append((time.monotonic(), r.url.split("/jobs/")[1].split("/")[0])) if "/card" in r.url else None
        ),
    )
    page.goto(api_server + "/")
    expect(page.locator("article.card")).to_have_count(50)
    started = time.monotonic()
    page.wait_for_timeout(8500)
    elapsed = time.monotonic() - started
    polled_ids = {job_id for _, job_id in polls}
    assert polled_ids == live_ids, "only the five live cards may poll"
    intervals = elapsed / 2.0
    assert len(polls) <= 5 * (intervals + 1), (len(polls), intervals)
    assert len(polls) >= 5 * (intervals - 1)  # and they do poll
    # Each card once an interval: the gaps between one card's polls, as the test sees them (the
    # browser's events reach it with some delay on a loaded machine, hence 1.5 s, not 2).
    times_of: dict[str, list[float]] = {}
    for at, job_id in polls:
        times_of.setdefault(job_id, []).append(at)
    for job_id, times in times_of.items():
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert all(gap > 1.5 for gap in gaps), (job_id, gaps)


def test_a_card_whose_job_vanished_says_so_and_stops_polling(page: Page, api_server: str, settings) -> None:
    store = JobStore(settings.database_url)
    job = store.create_job("Vanishing Ltd")  # stays queued: no worker runs in this test
    polls: list[float] = []
    page.on("request", lambda r: polls.append(time.monotonic()) if f"/jobs/{job.id}/card" in r.url else None)
    page.goto(api_server + "/")
    expect(card(page, "Vanishing Ltd").locator(".card__status")).to_have_text("Queued")
    store.delete_job(job.id)
    expect(page.locator(f"#job-{job.id} .card__status")).to_have_text("This job no longer exists.", timeout=5000)
    count = len(polls)
    page.wait_for_timeout(5000)
    assert len(polls) == count, "the card kept polling a job that no longer exists"


def test_the_form_works_without_javascript(browser, api_server: str, settings) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, api_server)
    page.goto(api_server + "/")
    page.fill("#startups", "No Script GmbH\nSecond AG")
    page.click("#submit-form button[type=submit]")
    assert page.url == api_server + "/"
    expect(page.locator(".notice--ok")).to_have_text("Queued 2 reports.")
    expect(page.locator("article.card")).to_have_count(2)
    page.fill("#startups", "x" * 201)
    page.click("#submit-form button[type=submit]")
    expect(page.locator(".notice--error")).to_contain_text("Nothing was queued. Line 1 is longer than 200 characters")
    expect(page.locator("#startups")).to_have_value("x" * 201)
    context.close()


def test_a_failed_card_shows_why_and_retries(page: Page, start_worker, api_server: str, settings) -> None:
    store = JobStore(settings.database_url)
    job = store.create_job("Second Chance Inc")
    store.mark_failed(job.id, error="The provider was overloaded. Try again in a few minutes.")
    start_worker(OFFLINE_STEP_DELAY="0.05")
    page.goto(api_server + "/")
    failed = card(page, "Second Chance Inc")
    expect(failed.locator(".card__status")).to_have_text(
        "Failed: The provider was overloaded. Try again in a few minutes."
    )
    failed.get_by_role("button", name="Retry").click()
    watch_states(page, "Second Chance Inc", "SUCCESS")
    expect(card(page, "Second Chance Inc").get_by_role("link", name="Open report")).to_be_visible()


def test_reports_page_lists_and_searches(page: Page, api_server: str, settings) -> None:
    store = JobStore(settings.database_url)
    for name in ("Alpha Analytics", "Beta Biotech", "Gamma Grid"):
        job = store.create_job(name)
        store.mark_succeeded(job.id, report_md=f"# {name}\n\n## Summary\n\nOk.\n", provider="offline/demo")
    page.goto(api_server + "/reports")
    expect(page.locator(".report-list__item")).to_have_count(3)
    page.fill("#q", "biotech")
    page.click("form.search button")
    expect(page.locator(".report-list__item")).to_have_count(1)
    expect(page.locator(".report-list__name")).to_have_text("Beta Biotech")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click(".report-list__name")
    expect(page.locator("h1.report__title")).to_have_text("Beta Biotech")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    flower = page.get_by_role("link", name="Flower")
    assert flower.get_attribute("href") == settings.flower_link


def test_material_for_one_startup_is_uploaded_with_the_form_and_listed_as_sources(
    page: Page, start_worker, api_server: str, tmp_path: Path
) -> None:
    deck, memo = tmp_path / "acme-deck.pdf", tmp_path / "acme-memo.pdf"
    deck.write_bytes(minimal_pdf([[PDF_SENTENCE]]))
    memo.write_bytes(minimal_pdf([["Acme Robotics plans a Series B in 2027."]]))
    start_worker(OFFLINE_STEP_DELAY="0.05")
    page.goto(api_server + "/")
    page.evaluate("window.__sameDocument = true")
    page.fill("#startups", "Acme Robotics")
    page.click(".submit-form__material summary")
    page.fill("#notes", "Call with the CEO: three pilots in Europe.")
    page.set_input_files("#document", [str(deck), str(memo)])  # one input, several files
    screenshot(page, "dashboard-material.png")
    page.click("#submit-form button[type=submit]")
    expect(page.locator(".notice--ok")).to_have_text("Queued 1 report.")
    watch_states(page, "Acme Robotics", "SUCCESS")
    assert page.evaluate("window.__sameDocument") is True, "the upload reloaded the page"

    card(page, "Acme Robotics").get_by_role("link", name="Open report").click()
    body = page.locator(".report__body")
    expect(body).to_contain_text("No sources were searched")
    expect(body.locator("li", has_text="acme-deck.pdf (provided by the analyst)")).to_have_count(1)
    expect(body.locator("li", has_text="acme-memo.pdf (provided by the analyst)")).to_have_count(1)
    expect(body.locator("li", has_text="Analyst's notes (provided by the analyst)")).to_have_count(1)


def test_a_name_two_companies_share_asks_on_its_card_and_a_button_resumes_it(
    page: Page, start_worker, api_server: str, web: FakeSearchServer
) -> None:
    two_companies(web)  # the fake SearXNG finds two companies called Acme Robotics
    start_worker(OFFLINE_STEP_DELAY="0.05", SEARCH_BACKEND="searxng", SEARXNG_URL=web.url, FETCH_ALLOW_PRIVATE="true")
    page.goto(api_server + "/")
    page.evaluate("window.__sameDocument = true")
    page.fill("#startups", "Acme Robotics")
    page.click("#submit-form button[type=submit]")

    watch_states(page, "Acme Robotics", "NEEDS_INPUT")
    asking = card(page, "Acme Robotics")
    expect(asking.locator(".card__status")).to_contain_text("Several companies are called Acme Robotics")
    expect(asking.locator(".card__candidate button")).to_have_text(
        ["Acme Robotics · acmerobotics.com", "Acme Robotics · acme-robotics.io"]
    )
    expect(asking.locator(".card__snippet").nth(1)).to_have_text("Robot vacuums for flats.")
    screenshot(page, "dashboard-which-company.png")

    asking.get_by_role("button", name="Acme Robotics · acme-robotics.io").click()
    watch_states(page, "Acme Robotics", "SUCCESS")
    assert page.evaluate("window.__sameDocument") is True, "the answer reloaded the page"
    card(page, "Acme Robotics").get_by_role("link", name="Open report").click()
    expect(page.locator(".report__body")).to_contain_text("Company website: https://acme-robotics.io")
