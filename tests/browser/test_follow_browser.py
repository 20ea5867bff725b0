"""Following a company in headless Chromium: an analyst opens a report that has a second version,
chooses a cadence in its watch form (htmx swaps the form in place), finds the company on the
watchlist, and reads what the new version changed, the changed figure with its source."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from config import Settings
from tests.browser.conftest import screenshot
from tests.test_changes import FACTS_V1, SOURCES_V1, SOURCES_V2, TRACTION, report
from tests.test_company_pages import V2_FACTS, version
from worker.store import JobStore

pytestmark = pytest.mark.browser


def test_watch_a_company_and_read_what_changed(page: Page, api_server: str, settings: Settings) -> None:
    store = JobStore(settings.database_url)
    first = version(store, report(FACTS_V1, SOURCES_V1))
    # The second version read one more page, listed first: every old source is one number up.
    renumbered = TRACTION.replace("[3]", "[4]").replace("[2]", "[3]")
    second = version(store, report(V2_FACTS, SOURCES_V2, traction=renumbered).replace("[1]", "[2]"))
    store.dispose()
    assert first.company_id == second.company_id

    page.goto(f"{api_server}/reports/{second.id}")
    page.evaluate("window.__sameDocument = true")
    form = page.locator("form.watch-form")
    expect(form.locator("label")).to_have_text("Watch this company")
    form.locator("select[name=every]").select_option("daily")
    form.get_by_role("button", name="Watch").click()

    # The form swapped itself: watching now, daily chosen, without a page load.
    form = page.locator("form.watch-form")
    expect(form.get_by_role("status")).to_have_text("Saved.")
    expect(form.locator("label")).to_have_text("Watching")
    expect(form.locator("select[name=every]")).to_have_value("daily")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(page.locator("form.watch-form")).to_have_count(1)

    # The watchlist lists it, with its cadence, last run and next run.
    form.get_by_role("link", name="Your watchlist").click()
    page.wait_for_url(f"{api_server}/watches")
    (entry,) = page.locator(".report-list__item").all()
    expect(entry.locator(".report-list__name")).to_have_text("Acme Robotics")
    meta = entry.locator(".report-list__meta")
    expect(meta).to_contain_text("Daily")
    expect(meta.locator("time")).to_have_count(2)  # the last run and the next one
    screenshot(page, "watchlist-laptop.png")

    # From the watchlist to the newest version, whose changes view shows the changed head count.
    entry.get_by_role("link", name="Acme Robotics").click()
    page.wait_for_url(f"{api_server}/reports/{second.id}")
    changes = page.locator("section#changes")
    expect(changes.locator("#changes-heading")).to_have_text(f"Changes since {first.finished_at.date().isoformat()}")
    expect(changes.locator(".changes__reasons")).to_contain_text("Head count: 40 → 55")
    row = changes.locator(".changes__figures tbody tr").filter(has=page.locator("th", has_text="Head count"))
    expect(row.locator("td").nth(0)).to_contain_text("40")
    expect(row.locator("td").nth(1)).to_contain_text("55")
    citation = row.locator("td").nth(1).get_by_role("link")
    expect(citation).to_have_attribute("href", "https://blog.example/acme-team")
    # The changed Key facts line reads as in the report: in bold, not with Markdown's asterisks.
    added = changes.locator(".changes__added li").filter(has_text="Head count:")
    expect(added).to_have_text("Head count: 55 [4]")
    expect(added.locator("strong")).to_have_text("Head count:")
    changes.scroll_into_view_if_needed()
    screenshot(page, "changes-laptop.png", full_page=False)
