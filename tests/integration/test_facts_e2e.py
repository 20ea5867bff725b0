"""Key facts as data end to end: a real worker searching the fake SearXNG and reading the fake web's
pages, the real OpenAI SDK writing the report against the fake provider (whose Snapshot states the
Key facts its sources state, each with its citation, and whose summary ends with a
recommendation), the facts stored by the worker and read back through `GET /api/reports/<id>`
under gunicorn, and shown on the report page."""

from __future__ import annotations

import html

import pytest
import requests

from tests.conftest import AUTH, follow_job, provider_env
from tests.fakes.llm_server import FakeLLMServer, Reply, answer_text
from tests.fakes.search_server import FakeSearchServer

pytestmark = pytest.mark.integration

RAISES, TEAM, COMPANY = "/articles/acme-raises", "/articles/acme-team", "/companies/warehouse"


def snapshot_overstating_the_head_count(prompt: str) -> str | None:
    """The fake's usual answers, but its Snapshot says 60 people where the team page says 45."""
    if "Now write the section “Snapshot”" not in prompt:
        return None
    return answer_text(prompt).replace("employs 45 people", "").replace("45 people", "60 people")


def test_facts_are_extracted_from_fake_pages_with_their_citations(
    start_worker, api_server: str, fake_llm: FakeLLMServer, web: FakeSearchServer
) -> None:
    fake_llm.set_default("openai", Reply.answering(snapshot_overstating_the_head_count))
    start_worker(
        **provider_env(fake_llm, "openai"),
        SEARCH_BACKEND="searxng",
        SEARXNG_URL=web.url,
        FETCH_ALLOW_PRIVATE="true",  # the fake web is on 127.0.0.1
    )
    website = f"{web.url}{COMPANY}"
    response = requests.post(
        f"{api_server}/generate", json={"startup": "Acme Robotics", "website": website}, headers=AUTH, timeout=10
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    final, _ = follow_job(api_server, job_id, timeout=90)
    assert final["state"] == "SUCCESS", final
    report = requests.get(f"{api_server}/api/reports/{job_id}", headers=AUTH, timeout=5)
    assert report.status_code == 200
    body = report.json()
    assert body["markdown"] == final["result"] and body["website"] == website
    facts = {fact["key"]: fact for fact in body["facts"]}

    def urls(key: str) -> list[str]:
        return [source["url"] for source in facts[key]["sources"]]

    # Stated by the round's article, cited as it, and found there.
    assert (facts["founded"]["value"], facts["founded"]["found"]) == ("2021", True)
    assert urls("founded") == [f"{web.url}{RAISES}"]
    assert facts["total_raised"]["found"] is True and urls("total_raised") == [f"{web.url}{RAISES}"]
    assert facts["lead_investors"]["value"] == "Example Ventures" and urls("lead_investors") == [f"{web.url}{RAISES}"]
    assert facts["lead_investors"]["found"] is None  # no figure to check
    # The team page says 45, the report 60: not found, as the report's own check says.
    assert (facts["head_count"]["value"], facts["head_count"]["found"]) == ("60 people", False)
    assert urls("head_count") == [f"{web.url}{TEAM}"]
    assert "**60 people**: not found in the cited source" in body["markdown"]
    assert facts["headquarters"]["value"] == "Austin"
    assert facts["business_model"]["value"].startswith("sells autonomous picking arms")
    # What no page states is unknown; the website is the one given, with its page.
    assert facts["last_round_date"] == {
        "key": "last_round_date",
        "label": "Last round date",
        "value": None,
        "sources": [],
        "found": None,
    }
    assert facts["website"]["value"] == website and urls("website") == [website]
    # The summary's closing recommendation, with the citation it carried over.
    assert facts["recommendation"]["value"] == "Watch" and len(facts["recommendation"]["sources"]) == 1

    # The report page shows them as a table, with the sources linked and the unfound figure marked.
    page = html.unescape(requests.get(f"{api_server}/reports/{job_id}", headers=AUTH, timeout=5).text)
    table = page.split('<table class="key-facts', 1)[1].split("</table>", 1)[0]
    assert "Watch" in table and "Example Ventures" in table and f'href="{web.url}{RAISES}"' in table
    head_count_row = table.split(">Head count<", 1)[1].split("</tr>", 1)[0]
    assert "60 people" in head_count_row and "⚠" in head_count_row
