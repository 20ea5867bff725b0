"""Comparing companies in headless Chromium: an analyst ticks three finished reports on /reports,
presses Compare, and reads one column per company with the recommendation on top and each
value's citations linked to their sources."""

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
