"""Companies and versions (`worker.companies`): a report that succeeds becomes a version of its
company, found or created once however many workers finish at once; a later version stores what
changed against the one before. Reports are written as the worker writes them (`run_report`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from tests.fakes import search_server
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.search_server import FakeSearchServer
from tests.test_pipeline import fake_llm_settings, run_report
from tests.test_research import STARTUP, searching
from worker.celery_setup import ReportsCelery
from worker.companies import (
    attach_company,
    company_key,
    find_or_create_company,
    get_change,
    get_company,
    list_companies,
    previous_version,
    record_change,
    versions,
)
from worker.models import Change, Company
from worker.pipeline import SYNTHESIS_STEP
from worker.report_job import write_batch
from worker.store import JobStore


@pytest.fixture
def store(database_url: str) -> JobStore:
    store = JobStore(database_url)
    yield store
    store.dispose()


def written(worker: ReportsCelery, startup: str = "Acme", created_by: str | None = None) -> str:
    job_id = worker.job_store.create_job(startup, created_by=created_by).id
    run_report(worker, job_id)
    return job_id


def test_the_key_is_the_registrable_domain_else_the_name() -> None:
    assert company_key("Acme", "https://www.acme.co.uk/about") == "domain:acme.co.uk"
    assert company_key("ACME Ltd", "acme.co.uk") == "domain:acme.co.uk"
    assert company_key("Acme", "http://127.0.0.1:8123/home") == "domain:127.0.0.1"
    assert company_key("  Acme   Robotics ", None) == "name:acme robotics"


def test_one_website_under_two_names_is_one_company(store: JobStore) -> None:
    first = find_or_create_company(store, "Acme", None)
    by_site = find_or_create_company(store, "Acme", "https://www.acme.co.uk/")
    assert find_or_create_company(store, "ACME Ltd", "https://acme.co.uk/team") == by_site != first
    company = get_company(store, by_site)
    assert (company.name, company.website, company.key) == ("Acme", "https://www.acme.co.uk/", "domain:acme.co.uk")


def test_jobs_finishing_together_create_one_company(store: JobStore) -> None:
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    ids: list[int] = []

    def finish() -> None:
        barrier.wait()
        ids.append(find_or_create_company(store, "Acme Robotics", "https://acmerobotics.com"))

    threads = [threading.Thread(target=finish) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == threads_count and len(set(ids)) == 1
    with store.session() as session:
        assert session.query(Company).count() == 1


def test_a_finished_job_is_not_attached(store: JobStore) -> None:
    job = store.create_job("Acme")
    store.mark_cancelled(job.id, by="admin")
    assert attach_company(store, job.id, "Acme", None) is None
    assert store.get_job(job.id).company_id is None


def test_a_succeeded_report_is_a_version_and_the_next_one_records_its_changes(demo: ReportsCelery) -> None:
    store = demo.job_store
    first = written(demo)
    job = store.get_job(first)
    assert job.company_id is not None
    assert get_company(store, job.company_id).key == "name:acme"
    assert get_change(store, first) is None  # the first version has nothing to compare with

    second = written(demo)
    assert [v.id for v in versions(store, job.company_id)] == [second, first]
    assert previous_version(store, store.get_job(second)).id == first
    change = get_change(store, second)
    summary = json.loads(change.summary)
    # The demo's report depends on the name only, so the company's second report says nothing new.
    assert change.material is False and summary["reasons"] == []
    assert summary["company"] == {"id": job.company_id, "name": "Acme", "website": None}
    assert (summary["job_id"], summary["previous_job_id"]) == (second, first)
    assert summary["since"] == job.finished_at.date().isoformat()
    assert [c.id for c in list_companies(store, 10)] == [job.company_id]

    # Recording again (a re-delivered task) stores nothing new.
    assert record_change(store, second, threshold=0.2).id == change.id
    with store.session() as session:
        assert session.query(Change).count() == 1


def test_versions_and_companies_are_narrowed_to_an_owner(demo: ReportsCelery) -> None:
    store = demo.job_store
    alices = written(demo, created_by="alice")
    bobs = written(demo, created_by="bob")
    company_id = store.get_job(alices).company_id
    assert [v.id for v in versions(store, company_id, owner="alice")] == [alices]
    assert previous_version(store, store.get_job(bobs), owner="bob") is None
    assert previous_version(store, store.get_job(bobs)).id == alices
    assert list_companies(store, 10, owner="carol") == []
    assert [c.id for c in list_companies(store, 10, owner="bob")] == [company_id]


def test_a_page_that_changed_between_runs_is_a_material_change_with_citations(
    build_worker: Callable[..., ReportsCelery],
    web: FakeSearchServer,
    fake_llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the real pipeline: fake search and pages, the fake LLM writing Key facts from what
    its sources say. Between the two runs the team page's head count goes from 45 to 60."""
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    first = written(worker, STARTUP)
    team = search_server.ARTICLES["/articles/acme-team"]
    paragraphs = [team[2][0].replace("employs 45 people", "employs 60 people"), *team[2][1:]]
    monkeypatch.setitem(search_server.ARTICLES, "/articles/acme-team", (team[0], team[1], paragraphs))
    second = written(worker, STARTUP)

    store = worker.job_store
    assert store.get_job(first).company_id == store.get_job(second).company_id
    change = get_change(store, second)
    summary = json.loads(change.summary)
    assert change.material is True
    (head_count,) = [f for f in summary["figures"] if f["name"] == "Head count"]
    assert (head_count["before"], head_count["after"]) == ("45 people", "60 people")
    assert head_count["after_sources"][0]["url"].endswith("/articles/acme-team")
    assert "Head count: 45 people → 60 people" in summary["reasons"]


def test_a_summary_task_delivered_again_after_a_crash_records_the_change_it_missed(demo: ReportsCelery) -> None:
    """A worker that dies between storing a report and recording its change leaves the summary's
    task unacknowledged; delivered again, it finds the job done and records the change then."""
    store = demo.job_store
    written(demo)
    second = written(demo)
    with store.session() as session:  # as if the worker died right after storing the report
        session.query(Change).filter(Change.job_id == second).delete()
    assert get_change(store, second) is None

    write_batch(second, (SYNTHESIS_STEP,), resources=demo)
    assert get_change(store, second) is not None
    write_batch(second, (SYNTHESIS_STEP,), resources=demo)  # and a duplicate delivery stores nothing twice
    with store.session() as session:
        assert session.query(Change).filter(Change.job_id == second).count() == 1
