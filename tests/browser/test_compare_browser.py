"""Companies side by side in headless Chromium: an analyst imports a CSV of companies on the
dashboard (htmx: the cards and each bad row's message, without a reload); and ticks three finished
reports on /reports, presses Compare, and reads one column per company with the recommendation on
top and each value's citations linked to their sources."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from config import Settings
from tests.browser.conftest import PageWatch, screenshot
from tests.test_compare import acme_facts, finished
from worker.facts import FACT_FIELDS
from worker.store import JobStore

pytestmark = pytest.mark.browser


def test_tick_three_reports_and_compare_them(page: Page, api_server: str, settings: Settings, watch: PageWatch) -> None:
    store = JobStore(settings.database_url)
    acme = finished(store, "Acme Robotics", acme_facts())
    globex = finished(store, "Globex", acme_facts(recommendation="Pass", stage="Seed"))
    finished(store, "Hooli", acme_facts())  # listed, not ticked
    initech = finished(store, "Initech")  # written before facts were kept
    store.dispose()

    page.goto(f"{api_server}/reports")
    page.get_by_label("Compare Acme Robotics").check()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose at least 2 reports to compare (got 1)")
    # The page answered 400, as it should, which Chromium logs: that one is expected.
    (refused,) = [error for error in watch.console_errors if "400" in error and "/compare?ids=" in error]
    watch.console_errors.remove(refused)

    page.goto(f"{api_server}/reports")
    for name in ("Acme Robotics", "Globex", "Initech"):
        page.get_by_label(f"Compare {name}").check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(f"{api_server}/compare?**")

    table = page.locator("table.compare")
    heads = table.locator("thead th.compare__company > a")
    expect(heads).to_have_count(3)
    # The list is newest first, and so are the columns: one per ticked company, linked to its report.
    names = heads.all_inner_texts()
    assert sorted(names) == ["Acme Robotics", "Globex", "Initech"]
    jobs = {"Acme Robotics": acme, "Globex": globex, "Initech": initech}
    for index, name in enumerate(names):
        expect(heads.nth(index)).to_have_attribute("href", f"/reports/{jobs[name].id}")

    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(FACT_FIELDS))
    expect(rows.first.locator("th")).to_have_text("Recommendation")
    recommendation = rows.first.locator("td").all_inner_texts()
    assert {text.split(" [")[0] for text in recommendation} == {"Take a meeting", "Pass", "—"}
    stage = table.locator("tr[data-fact=stage]")
    links = stage.locator("a[href='https://news.example/acme-raises']")
    expect(links).to_have_count(2)  # Acme's and Globex's stage, each citing the news page
    expect(links.first).to_have_text("[2]")
    expect(table.locator("thead")).to_contain_text("facts were not kept for this report")
    screenshot(page, "compare-laptop.png")

    heads.filter(has_text="Globex").click()
    page.wait_for_url(f"{api_server}/reports/{globex.id}")


def test_import_a_csv_of_companies_on_the_dashboard(page: Page, api_server: str) -> None:
    page.goto(f"{api_server}/")
    page.evaluate("window.__sameDocument = true")
    page.get_by_text("…or import a CSV of companies").click()
    csv_text = (
        "name,website,notes\nAcme Robotics,,Met the CEO\n,https://nameless.example,\nGlobex,not a site,\nInitech,,\n"
    )
    page.set_input_files(
        "#companies", files=[{"name": "batch.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    page.click("#submit-form button[type=submit]")

    expect(page.locator(".notice--ok")).to_have_text("Queued 2 reports from batch.csv.")
    problems = page.locator(".csv-problems li")
    expect(problems).to_have_text(
        [
            "Row 3: the name must not be empty.",
            "Row 4: website 'not a site' is not a web address such as https://acme.example.",
        ]
    )
    expect(page.locator("article.card")).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
