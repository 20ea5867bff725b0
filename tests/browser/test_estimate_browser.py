"""The live estimate under the list of names, in headless Chromium against the API under gunicorn."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Page, Request, expect

from tests.fakes.pdf_builder import minimal_pdf

pytestmark = pytest.mark.browser


def test_the_estimate_follows_the_names_as_they_are_typed_and_sends_only_them(
    page: Page, api_server: str, tmp_path: Path
) -> None:
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if request.url.endswith("/jobs/estimate") else None)
    page.goto(api_server + "/")
    estimate = page.locator("#estimate")
    expect(estimate).to_be_empty()

    deck = tmp_path / "deck.pdf"
    deck.write_bytes(minimal_pdf([["A deck that must not travel with every keystroke."]]))
    page.click(".submit-form__material summary")
    page.set_input_files("#document", str(deck))
    page.locator("#startups").press_sequentially("Acme\nGlobex", delay=20)
    expect(estimate).to_contain_text("About 26 model calls, free with the offline demo provider")
    expect(estimate).to_contain_text("default report size")

    page.locator("#startups").press("Enter")
    page.locator("#startups").press_sequentially("Initech", delay=20)
    expect(estimate).to_contain_text("About 39 model calls")
    last = sent[-1]
    assert last.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(last.post_data) == {"startups": ["Acme\nGlobex\nInitech"]}  # no file, no other field
    assert len(sent) < len("Acme\nGlobex\nInitech")  # asked after a pause, not at every key

    page.fill("#startups", "Acme\nA\u202eB")
    page.locator("#startups").dispatch_event("input")
    expect(estimate).to_contain_text("Line 2 contains an invisible direction control")
