"""A sourced report end to end: an analyst's PDF and notes uploaded through the API, a real worker
searching the fake SearXNG and reading the fake web's pages, the real OpenAI SDK writing the
sections against the fake provider (which cites every source, plus one made-up source and one
URL nobody read), and the report page showing the sources as links and the removal count."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import AUTH, follow_job, provider_env
from tests.fakes.llm_server import INVENTED_CITATION, INVENTED_URL, FakeLLMServer
from tests.fakes.pdf_builder import minimal_pdf
from tests.fakes.search_server import PDF_SENTENCE, FakeSearchServer
from worker.pipeline import TOTAL_STEPS

pytestmark = pytest.mark.integration


def test_an_uploaded_deck_and_the_web_pages_read_are_cited_and_invented_citations_removed(
    start_worker, api_server: str, fake_llm: FakeLLMServer, web: FakeSearchServer
) -> None:
    start_worker(
        **provider_env(fake_llm, "openai"),
        SEARCH_BACKEND="searxng",
        SEARXNG_URL=web.url,
        FETCH_ALLOW_PRIVATE="true",  # the fake web is on 127.0.0.1
    )
    response = requests.post(
        f"{api_server}/generate",
        data={"startup": "Acme Robotics", "notes": "Call with the CEO: three pilots in Europe."},
        files={"document": ("deck.pdf", minimal_pdf([[PDF_SENTENCE]]), "application/pdf")},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 202, response.text
    final, seen = follow_job(api_server, response.json()["job_id"], timeout=90)

    assert final["state"] == "SUCCESS", final
    assert "Searching the web and reading sources" in {s["progress"]["label"] for s in seen}
    report = final["result"]
    assert INVENTED_CITATION not in report and INVENTED_URL not in report
    assert final["citations_removed"] == 2 * (TOTAL_STEPS - 1)  # every step with sources invented two
    assert f"{PDF_SENTENCE.rstrip('.')} [2]" in report  # the deck is source 2, after the notes
    assert "2. deck.pdf (provided by the analyst)" in report
    searched = {r.query["q"][0] for r in web.requests if r.path == "/search" and r not in web.news_requests()}
    assert len(searched) == 5 and all('"Acme Robotics"' in q for q in searched)
    assert "## Recent news\n\n- **" in report  # the fake's news, dated

    page = requests.get(f"{api_server}{final['report_url']}", headers=AUTH, timeout=5).text
    assert f"{final['citations_removed']} unsupported citations removed" in page
    assert f'<a href="{web.url}/articles/acme-raises" rel="noopener noreferrer nofollow">' in page
