"""Cheap re-runs (worker/rerun.py): a new version of a company's report pays only for the steps
whose sources changed. Driven as tests/test_pipeline.py drives a report (`run_report`: the stages
of the canvas through `write_batch`, over a real job store), with the OpenAI SDK against the fake
provider server, which counts the calls, and the fake SearXNG and web, whose pages carry an ETag
and a Last-Modified and answer 304."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.conftest import DEMO
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.search_server import ARTICLES, FakeSearchServer, Hit, Script
from tests.test_pipeline import fake_llm_settings, run_report, step_of
from worker import rerun
from worker.celery_setup import ReportsCelery
from worker.facts import load_facts
from worker.models import Job, JobState, JobStep
from worker.pipeline import PLAN_STEP, SECTIONS, SYNTHESIS_STEP
from worker.research import TOPIC_QUERIES

STARTUP = "Acme Robotics"
#: The pages each topic's search finds: the team page only by the founders' search, so that a
#: change to it touches the Team section and the steps that see every source, and no other.
TOPIC_PAGES = {
    "company": ("/articles/acme-raises", "/articles/undated"),
    "funding": ("/articles/acme-raises",),
    "founders": ("/articles/acme-team",),
    "competitors": ("/articles/undated",),
    "market": ("/articles/undated",),
}
#: The steps that see the team page: the Team section, and the plan and the three sections of
#: judgement, which see every source (SECTION_TOPICS); the summary follows the sections.
SEE_THE_TEAM_PAGE = {PLAN_STEP, "team", "risks", "thesis", "diligence", SYNTHESIS_STEP}


def find(web: FakeSearchServer, topic: str, paths: tuple[str, ...]) -> None:
    """Make the search of `topic` find the articles at `paths`, in that order."""
    hits = tuple(Hit(ARTICLES[p][0], f"{web.url}{p}", ARTICLES[p][2][0][:160], ARTICLES[p][1]) for p in paths)
    web.script(TOPIC_QUERIES[topic].format(name=f'"{STARTUP}"'), Script(hits=hits))


@pytest.fixture
def worker(build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer) -> ReportsCelery:
    """A worker as shipped (its page cache in the job database), searching the fake SearXNG."""
    for topic, paths in TOPIC_PAGES.items():
        find(web, topic, paths)
    settings = {"search_backend": "searxng", "searxng_url": web.url, "fetch_allow_private": True}
    return build_worker(**settings, **fake_llm_settings(fake_llm))


def first_run(worker: ReportsCelery) -> Job:
    job_id = worker.job_store.create_job(STARTUP).id
    run_report(worker, job_id)
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS, job.error
    return job


def run_again(worker: ReportsCelery, previous: Job) -> Job:
    """A re-run, as a watch's schedule queues one: a new job naming the version before."""
    job_id = worker.job_store.create_job(STARTUP).id
    with worker.job_store.session() as session:
        session.get(Job, job_id).previous_job_id = previous.id
    run_report(worker, job_id)
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS, job.error
    return job


def section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r}"
    return match.group(1).strip()


def unchanged_line(job: Job) -> str:
    return f"*Unchanged since {job.finished_at:%Y-%m-%d}: its sources are the same.*"


def test_a_rerun_whose_sources_did_not_change_costs_at_most_a_fifth_of_the_first_runs_calls(
    worker: ReportsCelery, web: FakeSearchServer, fake_llm: FakeLLMServer, extractions: list[str]
) -> None:
    first = first_run(worker)
    first_calls = len(fake_llm.successes())
    assert first_calls == first.calls == len(SECTIONS) + 2
    pages = set(extractions)
    assert len(pages) == 3 and not web.not_modified
    fake_llm.reset()
    extractions.clear()

    second = run_again(worker, first)

    calls = len(fake_llm.successes())
    assert calls <= 0.2 * first_calls
    assert second.calls == second.calls_sent == calls
    # Every page was asked for with its validators, answered 304, and not extracted again.
    assert sorted(web.not_modified) == sorted(p.removeprefix(web.url) for p in pages)
    assert extractions == []
    # Each section keeps the first version's text and says since when.
    for step in SECTIONS:
        body = section(second.report_md, step.title)
        assert unchanged_line(first) in body, step.key
        assert worker.job_store.load_checkpoints(first.id)[step.key].text.splitlines()[0] in body
    steps = worker.job_store.load_checkpoints(second.id)
    assert all(not c.paid and c.unchanged_since == first.finished_at for c in steps.values())
    assert "(kept from" in second.report_md and "by no model" not in second.report_md


def test_a_page_that_changed_is_extracted_again_and_only_the_sections_resting_on_it_are_rewritten(
    worker: ReportsCelery, web: FakeSearchServer, fake_llm: FakeLLMServer, extractions: list[str]
) -> None:
    first = first_run(worker)
    fake_llm.reset()
    extractions.clear()
    title, published, paragraphs = ARTICLES["/articles/acme-team"]
    web.set_article("/articles/acme-team", title, published, ["Acme Robotics now employs 60 people.", *paragraphs[1:]])

    second = run_again(worker, first)

    assert extractions == [f"{web.url}/articles/acme-team"]  # the others answered 304
    assert sorted(web.not_modified) == ["/articles/acme-raises", "/articles/undated"]
    asked = {step_of(r.prompt) for r in fake_llm.successes()}
    assert asked == SEE_THE_TEAM_PAGE
    assert "employs 60 people" in section(second.report_md, "Team")
    for step in SECTIONS:
        body = section(second.report_md, step.title)
        assert (unchanged_line(first) in body) == (step.key not in SEE_THE_TEAM_PAGE), step.key
    assert "*Unchanged" not in section(second.report_md, "Summary")


def test_a_page_served_without_validators_but_with_the_same_body_is_not_extracted_again(
    worker: ReportsCelery, web: FakeSearchServer, fake_llm: FakeLLMServer, extractions: list[str]
) -> None:
    web.validators = False  # no ETag, no Last-Modified: only the body's hash says it is the same
    first = first_run(worker)
    fake_llm.reset()
    extractions.clear()

    second = run_again(worker, first)

    assert extractions == [] and web.not_modified == []
    assert second.calls == 0


def test_the_same_pages_found_in_another_order_keep_their_text_citing_them_by_their_new_numbers(
    worker: ReportsCelery, web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    first = first_run(worker)
    fake_llm.reset()
    find(web, "company", tuple(reversed(TOPIC_PAGES["company"])))  # read first, so numbered first

    second = run_again(worker, first)

    assert len(fake_llm.successes()) == 0
    before, now = (worker.job_store.load_research(job.id) for job in (first, second))
    number = {(s.url, version): s.number for version, r in (("before", before), ("now", now)) for s in r.sources}
    raises, undated = f"{web.url}/articles/acme-raises", f"{web.url}/articles/undated"
    assert (number[raises, "before"], number[undated, "before"]) == (number[undated, "now"], number[raises, "now"])
    was = worker.job_store.load_checkpoints(first.id)["snapshot"].text
    kept = worker.job_store.load_checkpoints(second.id)["snapshot"].text
    swapped = {f"[{number[u, 'before']}]": f"[{number[u, 'now']}]" for u in (raises, undated)}
    assert kept == re.sub(r"\[\d+\]", lambda m: swapped.get(m.group(0), m.group(0)), was) != was


def test_what_the_offline_demo_wrote_is_never_kept(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer
) -> None:
    for topic, paths in TOPIC_PAGES.items():
        find(web, topic, paths)
    demo = build_worker(search_backend="searxng", searxng_url=web.url, fetch_allow_private=True, **DEMO)
    first = first_run(demo)
    second = run_again(demo, first)
    assert second.calls == first.calls == len(SECTIONS) + 2
    assert "Unchanged since" not in second.report_md


def test_a_kept_step_keeps_the_date_it_was_written_through_later_reruns(
    worker: ReportsCelery, fake_llm: FakeLLMServer
) -> None:
    first = first_run(worker)
    third = run_again(worker, run_again(worker, first))
    assert unchanged_line(first) in section(third.report_md, "Snapshot")
    assert len(fake_llm.successes()) == first.calls


def test_a_rerun_given_the_website_the_first_run_found_reads_it_only_to_know_the_company(
    worker: ReportsCelery, web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    """A watch's re-run names its company by the website; the first run found it by search, so
    reading it as the analyst's material would renumber every source and re-write every section."""
    first = first_run(worker)
    fake_llm.reset()
    job_id = worker.job_store.create_job(STARTUP).id
    with worker.job_store.session() as session:
        job = session.get(Job, job_id)
        job.previous_job_id, job.website = first.id, f"{web.url}/companies/warehouse"
    material, anchor = rerun.material_and_anchor(worker.job_store, worker.job_store.get_job(job_id))
    assert material.website is None and anchor == f"{web.url}/companies/warehouse"

    run_report(worker, job_id)

    research = worker.job_store.load_research(job_id)
    assert not any(source.kind == "provided" for source in research.sources)
    assert research.company_website == f"{web.url}/companies/warehouse"


def test_a_snapshot_written_before_the_key_facts_lines_it_now_lacks_is_written_anew(
    worker: ReportsCelery, fake_llm: FakeLLMServer
) -> None:
    """A first version whose Snapshot lists only the five Key facts of before issue 18: its re-run
    writes the Snapshot (and so the summary) again, and keeps every other step."""
    first = first_run(worker)
    store = worker.job_store
    snapshot = store.load_checkpoints(first.id)["snapshot"]
    old_lines = ("Stage", "Total raised", "Last round", "Head count", "Headquarters")
    old_text = "\n".join(
        line
        for line in snapshot.text.splitlines()
        if not line.startswith("- **") or line.split(":**")[0].removeprefix("- **") in old_lines
    )
    assert "**Founded:**" in snapshot.text and "**Founded:**" not in old_text
    with store.session() as session:
        session.get(JobStep, (first.id, "snapshot")).text = old_text
    fake_llm.reset()

    second = run_again(worker, first)

    assert sorted(step_of(r.prompt) for r in fake_llm.successes()) == ["snapshot", SYNTHESIS_STEP]
    assert "**Founded:** 2021" in section(second.report_md, "Snapshot")
    facts = {fact.key: fact for fact in load_facts(second.facts)}
    assert facts["founded"].value == "2021" and facts["lead_investors"].value == "Example Ventures"
