"""Reading a report while it is written, in headless Chromium against the real stack: the Snapshot
shows rendered while the Risks are still being written, and the page becomes the finished report
without a reload, the section being read staying where it was on the screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.conftest import provider_env
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.test_pipeline import EXPECTED_HEADINGS

pytestmark = pytest.mark.browser


def slow_risks(prompt: str) -> float:
    """Each call takes 1 s, the Risks 8 s: several polls of the page see the Snapshot written and
    the Risks not."""
    return 8.0 if "Now write the section “Risks”" in prompt else 1.0


def test_the_snapshot_is_read_while_the_risks_are_written(
    page: Page, start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply(delay_for=slow_risks))
    start_worker(**provider_env(fake_llm, "openai"))
    page.goto(api_server + "/")
    page.fill("#startups", "Acme Robotics")
    page.click("#submit-form button[type=submit]")
    # The card's title opens the report while it is written.
    page.locator("article.card .card__title").get_by_role("link", name="Acme Robotics").click()
    page.wait_for_url(f"{api_server}/reports/*")
    page.evaluate("window.__marker = 1")
    snapshot, risks = page.locator("#live-snapshot"), page.locator("#live-risks")
    expect(snapshot.locator("h2")).to_have_text("Snapshot")
    expect(snapshot).to_contain_text("Fake analysis for", timeout=30_000)
    expect(risks.locator(".live-section__placeholder")).to_have_text("Being written…")
    expect(page.locator(".card__status")).to_contain_text("Writing the sections")
    screenshot(page, "live-report-laptop.png")
    # The analyst reads the Market size; the finished report will not move it on the screen.
    top_of_market = "document.getElementById('sec-market-size').getBoundingClientRect().top"
    page.evaluate("document.getElementById('sec-market-size').scrollIntoView()")
    reading_at = page.evaluate(top_of_market)

    # The finished report replaces the page's article: its download, every heading, no reload.
    expect(page.get_by_role("link", name="Download .md")).to_be_visible(timeout=60_000)
    headings = page.locator(".report__body h2").all_inner_texts()
    assert headings[: len(EXPECTED_HEADINGS) + 1] == ["Summary", *EXPECTED_HEADINGS]
    expect(page.locator("#live-risks")).to_have_count(0)
    expect(page.locator("#report .report__body")).to_contain_text("Fake analysis for: Startup: “Acme Robotics”")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert abs(page.evaluate(top_of_market) - reading_at) < 2, (reading_at, page.evaluate(top_of_market))
    page.wait_for_timeout(2500)  # polling has stopped: no request fails when the next poll would be due
