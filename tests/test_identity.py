"""Which company a name means, from search results grouped by registrable domain."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.search_server import FakeSearchServer, Hit, Script
from tests.test_pipeline import fake_llm_settings, run_report
from worker.celery_setup import ReportsCelery
from worker.models import JobState, utcnow
from worker.pipeline import TOTAL_STEPS
from worker.report_job import JobFailed, JobNeedsInput
from worker.research import TOPIC_QUERIES
from worker.sources.base import SearchResult
from worker.sources.fetch import Fetcher
from worker.sources.identity import (
    FULL,
    PARTIAL,
    CompanyAmbiguous,
    identify_company,
    match_strength,
    registrable_domain,
)


def result(url: str, title: str = "", snippet: str = "") -> SearchResult:
    return SearchResult(title=title or url, url=url, snippet=snippet)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.acme-robotics.co.uk/about", "acme-robotics.co.uk"),
        ("http://blog.acme.io:8080/x", "acme.io"),
        ("acme.com", "acme.com"),
        ("http://127.0.0.1:5000/", None),
        ("http://localhost/", None),
    ],
)
def test_the_registrable_domain_comes_from_the_public_suffix_list(url: str, domain: str | None) -> None:
    assert registrable_domain(url) == domain


@pytest.mark.parametrize(
    ("domain", "strength"),
    [
        ("acmerobotics.com", FULL),
        ("acme-robotics.io", FULL),
        ("getacmerobotics.com", FULL),
        ("acmeroboticshq.co.uk", FULL),
        ("acme.ai", PARTIAL),  # the first word only
        ("crunchbase.com", 0),
        ("techcrunch.com", 0),
        ("acmerobot.com", 0),  # not the name, nor a word of it
        ("ac.com", 0),  # too short to mean anything
    ],
)
def test_how_well_a_domain_matches_the_name(domain: str, strength: int) -> None:
    assert match_strength("Acme Robotics Inc.", domain) == strength


def test_one_domain_that_matches_best_is_the_company_and_aggregators_are_no_candidates() -> None:
    results = [
        result("https://www.crunchbase.com/organization/acme-robotics", "Acme Robotics - Crunchbase"),
        result("https://acme.ai/", "Acme AI | Chatbots"),
        result("https://www.acmerobotics.com/about", "About us | Acme Robotics", "Warehouse robots since 2019."),
        result("https://acmerobotics.com/team", "Team"),
    ]
    identity = identify_company("Acme Robotics", results)
    assert identity.website == "https://acmerobotics.com" and identity.domain == "acmerobotics.com"
    assert [(c.name, c.website) for c in identity.candidates] == [
        ("Acme AI", "https://acme.ai"),
        ("Acme Robotics", "https://acmerobotics.com"),
    ]
    assert [c.domain for c in identity.others] == ["acme.ai"]


def test_two_domains_that_match_equally_are_an_ambiguity_unless_the_best_is_taken() -> None:
    results = [
        result("https://acmerobotics.com/", "Acme Robotics — warehouse robots", "Robots that pick and pack."),
        result("https://news.example.com/acme", "Acme Robotics raises"),
        result("https://www.acme-robotics.io/", "Acme Robotics: home cleaning robots", "Robot vacuums for flats."),
    ]
    with pytest.raises(CompanyAmbiguous) as raised:
        identify_company("Acme Robotics", results)
    assert [c.to_dict() for c in raised.value.candidates] == [
        {"name": "Acme Robotics", "website": "https://acmerobotics.com", "snippet": "Robots that pick and pack."},
        {"name": "Acme Robotics", "website": "https://acme-robotics.io", "snippet": "Robot vacuums for flats."},
    ]
    assert "acmerobotics.com" in str(raised.value) and "acme-robotics.io" in str(raised.value)
    assert identify_company("Acme Robotics", results, take_best=True).website == "https://acmerobotics.com"


def test_the_analysts_website_decides_and_nothing_plausible_leaves_the_company_unknown() -> None:
    results = [result("https://acmerobotics.com/"), result("https://acme-robotics.io/")]
    assert identify_company("Acme Robotics", results, website="https://acme-robotics.io").domain == "acme-robotics.io"
    assert identify_company("Acme Robotics", [result("https://www.wikipedia.org/wiki/Acme")]).website is None
    assert identify_company("Acme Robotics", []).website is None


# Which company, as a worker decides it: the fake SearXNG finds two companies called Acme Robotics
# on their own domains, which the fetcher resolves to the fake web; the model is the fake provider.

STARTUP = "Acme Robotics"
WAREHOUSE, CLEANING = "https://acmerobotics.com", "https://acme-robotics.io"


def two_companies(web: FakeSearchServer) -> None:
    hits = (
        Hit(
            "Acme Robotics | Warehouse picking robots",
            f"http://acmerobotics.com:{web.port}/companies/warehouse",
            "Picking arms for warehouses.",
        ),
        Hit(
            "Acme Robotics: home cleaning robots",
            f"http://www.acme-robotics.io:{web.port}/companies/cleaning",
            "Robot vacuums for flats.",
        ),
        Hit("Review: the Acme Robotics vacuum", f"{web.url}/articles/vacuum-review", "A month with the vacuum."),
    )
    web.script(TOPIC_QUERIES["company"].format(name=f'"{STARTUP}"'), Script(hits=hits))
    recent = (date.today() - timedelta(days=10)).isoformat()
    news = (
        Hit("Acme Robotics opens a warehouse in Ohio", f"{web.url}/news/acme-europe", "Picking arms for Ohio.", recent),
        Hit("New vacuum from acme-robotics.io", f"{web.url}/news/acme-cfo", "The cleaning robot maker.", recent),
        Hit("Acme Robotics cuts prices", f"http://acme-robotics.io:{web.port}/press", "Cheaper vacuums.", recent),
    )
    web.script_news(f'"{STARTUP}"', Script(hits=news))


@pytest.fixture
def worker(build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer) -> ReportsCelery:
    """A worker that searches the fake SearXNG and whose fetcher finds every domain on the fake web."""
    two_companies(web)
    worker = build_worker(search_backend="searxng", searxng_url=web.url, **fake_llm_settings(fake_llm))

    def everything_is_here(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return socket.getaddrinfo("127.0.0.1", port, *args, **kwargs)

    fetcher = Fetcher(trusted_networks=("127.0.0.1/32",), timeout=5, resolver=everything_is_here)
    worker.__dict__["fetcher"] = fetcher  # the worker's cached fetcher, with a resolver of its own
    yield worker
    fetcher.close()


def new_job(worker: ReportsCelery, on_ambiguous: str) -> str:
    return worker.job_store.create_job(STARTUP, on_ambiguous=on_ambiguous).id


def source_urls(worker: ReportsCelery, job_id: str) -> list[str]:
    return [source.url or "" for source in worker.job_store.load_research(job_id).sources]


def test_a_name_two_companies_share_stops_the_job_before_any_model_call_until_one_is_chosen(
    worker: ReportsCelery, fake_llm: FakeLLMServer, web: FakeSearchServer
) -> None:
    job_id = new_job(worker, "ask")
    with pytest.raises(JobNeedsInput):
        run_report(worker, job_id)

    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.NEEDS_INPUT and fake_llm.requests == [] and job.calls == 0
    assert job.candidate_list == [
        {"name": "Acme Robotics", "website": WAREHOUSE, "snippet": "Picking arms for warehouses."},
        {"name": "Acme Robotics", "website": CLEANING, "snippet": "Robot vacuums for flats."},
    ]
    assert worker.job_store.load_research(job_id) is None  # nothing read yet: it is read again once chosen

    assert worker.job_store.choose_company(job_id, CLEANING)
    run_report(worker, job_id)

    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and job.calls == TOTAL_STEPS
    urls = source_urls(worker, job_id)
    assert not any("acmerobotics.com" in url for url in urls), urls  # the other company's pages are no source
    assert any("acme-robotics.io" in url for url in urls) and any(url.endswith("/vacuum-review") for url in urls)
    company_query = TOPIC_QUERIES["company"].format(name=f'"{STARTUP}"')
    searches = [r.query for r in web.requests if r.path == "/search" and "categories" not in r.query]  # not news
    later = [query["q"][0] for query in searches if query["q"][0] != company_query]
    assert len(later) == len(TOPIC_QUERIES) - 1  # each after the choice, anchored to the company's domain
    assert all(q.startswith('"Acme Robotics" acme-robotics.io ') for q in later), later
    assert f"Company website: {CLEANING}\n" in job.report_md


def test_best_takes_the_search_s_first_and_says_so_and_fail_fails_naming_both(
    worker: ReportsCelery, fake_llm: FakeLLMServer
) -> None:
    best = new_job(worker, "best")
    run_report(worker, best)
    job = worker.job_store.get_job(best)
    assert job.state == JobState.SUCCESS
    urls = source_urls(worker, best)
    assert any("acmerobotics.com" in url for url in urls)
    assert not any("acme-robotics.io" in url or url.endswith("/vacuum-review") for url in urls), urls
    news = [s.title for s in worker.job_store.load_research(best).sources if s.kind == "news"]
    assert news == ["Acme Robotics opens a warehouse in Ohio"]  # not the other company's news
    top = job.report_md.split("## Summary")[0]
    assert "Several companies are called Acme Robotics: this report is about acmerobotics.com" in top
    assert "leaves out acme-robotics.io" in top

    calls_before = len(fake_llm.requests)
    failed = new_job(worker, "fail")
    with pytest.raises(JobFailed):
        run_report(worker, failed)
    job = worker.job_store.get_job(failed)
    assert job.state == JobState.FAILURE and len(fake_llm.requests) == calls_before
    assert job.error == (
        "Several companies are called Acme Robotics: Acme Robotics (acmerobotics.com); Acme Robotics "
        '(acme-robotics.io). Submit it again with "website" set to the one you mean.'
    )


def test_a_question_nobody_answers_is_cancelled_after_the_set_time(worker: ReportsCelery) -> None:
    job_id = new_job(worker, "ask")
    with pytest.raises(JobNeedsInput):
        run_report(worker, job_id)
    store = worker.job_store
    assert store.expire_questions(utcnow() - timedelta(days=7)) == []  # asked just now
    assert store.expire_questions(utcnow() + timedelta(seconds=1)) == [job_id]
    job = store.get_job(job_id)
    assert job.state == JobState.REVOKED and "nobody chose which company was meant" in job.error
    assert not store.choose_company(job_id, CLEANING)  # too late: nothing is queued
