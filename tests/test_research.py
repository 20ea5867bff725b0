"""Reports that rest on sources: the search and the pages it finds (fake search APIs and pages on
127.0.0.1), the analyst's own material, citations checked against what was read, and sections
that say "No public information found" instead of guessing. Reports are written as the worker
writes them (`run_report`: each batch through `write_batch`, which reads the job's sources with
the search backend and fetcher the settings choose). The model is the real OpenAI SDK talking to
the fake provider server, which cites every source it is given, plus one source and one URL that
do not exist; or the offline demo provider."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from tests.conftest import DEMO
from tests.fakes.llm_server import INVENTED_CITATION, INVENTED_URL, FakeLLMServer, Reply
from tests.fakes.pdf_builder import minimal_pdf, shared_stream_bomb
from tests.fakes.search_server import (
    LATEX_NOTES,
    NEWS,
    OLD_ARTICLE,
    PDF_SENTENCE,
    TODAY,
    FakeSearchServer,
    Hit,
    Script,
    days_ago,
)
from tests.test_pipeline import fake_llm_settings, run_report
from webapp.rendering import render_report
from worker.celery_setup import ReportsCelery
from worker.models import Job
from worker.pipeline import NO_INFORMATION, NO_SEARCH_BANNER, TOTAL_STEPS
from worker.providers.base import FatalProviderError, TransientProviderError
from worker.recency import NEWS_NOT_SEARCHED, NEWS_UNAVAILABLE, NO_NEWS
from worker.research import TOPIC_QUERIES, Document, Material, SearchUnavailable, gather_research, has_article_text
from worker.sources.citations import render_sources
from worker.sources.conflicts import source_conflicts
from worker.sources.fetch import Fetcher
from worker.sources.searxng import SearXNGSearch
from worker.sources.text import clean_text

STARTUP = "Acme Robotics"
NEWS_QUERY = f'"{STARTUP}"'


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    """Private addresses refused, except the fake web's own."""
    with Fetcher(trusted_networks=("127.0.0.1/32",), timeout=5) as fetcher:
        yield fetcher


def searching(build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, **overrides: object) -> ReportsCelery:
    """A worker whose search backend is the fake SearXNG; the fake web is on 127.0.0.1, which the
    fetcher refuses unless FETCH_ALLOW_PRIVATE says otherwise."""
    return build_worker(search_backend="searxng", searxng_url=web.url, fetch_allow_private=True, **overrides)


def written(worker: ReportsCelery, material: Material | None = None) -> Job:
    """The job of a report on STARTUP with `material`, once the worker has written it."""
    job_id = worker.job_store.create_job(STARTUP, material=material).id
    run_report(worker, job_id)
    return worker.job_store.get_job(job_id)


def query(topic: str) -> str:
    return TOPIC_QUERIES[topic].format(name=f'"{STARTUP}"')


def section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r}"
    return match.group(1).strip()


def deck() -> Document:
    return Document("deck.pdf", pdf=minimal_pdf([[PDF_SENTENCE]]))


def test_a_report_cites_what_was_read_and_loses_invented_citations(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    material = Material(notes="Call with the CEO: three pilots in Europe.", documents=(deck(),))
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    job = written(worker, material)
    research = worker.job_store.load_research(job.id)
    assert research.searched and research.backend == "SearXNG"
    notes, pdf, *found = research.sources
    assert (notes.kind, notes.url, pdf.kind, pdf.title) == ("provided", None, "provided", "deck.pdf")
    pages = [source for source in found if source.kind != "news"]  # the news search's, listed apart
    assert pages and all(p.kind == "web" and p.url.startswith(f"{web.url}/articles/") for p in pages)
    assert len({p.url for p in pages}) == len(pages)  # a page found by several topics is read once

    markdown = job.report_md
    sources = section(markdown, "Sources")
    for page in pages:
        assert f"({page.url})" in sources  # each page read is listed, as a link
    assert sources.count("(provided by the analyst)") == 2
    # The deck's sentence, cited as the provided source it came from.
    assert f"{PDF_SENTENCE.rstrip('.')} [{pdf.number}]" in section(markdown, "Traction signals")
    # Every step given sources (all but the summary) cited one made-up number and one URL nobody
    # read: both are gone, and counted.
    assert INVENTED_CITATION not in markdown and INVENTED_URL not in markdown
    assert job.calls == TOTAL_STEPS and job.citations_removed == 2 * (TOTAL_STEPS - 1)
    assert f"{job.citations_removed} unsupported citations removed" in markdown
    assert NO_SEARCH_BANNER not in markdown


def test_a_section_the_search_found_nothing_for_says_so_without_asking_the_model(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    web.script(query("competitors"), Script(hits=()))
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    job = written(worker)
    assert worker.job_store.load_research(job.id).topics["competitors"] == ()

    assert section(job.report_md, "Competition") == NO_INFORMATION
    assert section(job.report_md, "Market size") != NO_INFORMATION  # the market search did find pages
    assert job.calls == TOTAL_STEPS - 1
    assert "Write the section “Competition”" not in " ".join(r.prompt for r in fake_llm.requests)


def test_without_a_search_backend_the_report_says_no_sources_were_searched(demo: ReportsCelery) -> None:
    job = written(demo)  # SEARCH_BACKEND=auto, and no search backend configured
    research = demo.job_store.load_research(job.id)
    assert not research.searched and research.sources == ()
    assert NO_SEARCH_BANNER in job.report_md and "No sources were searched" in job.report_md
    assert "## Sources" not in job.report_md
    assert f"## Recent news\n\n{NEWS_NOT_SEARCHED}\n\n---" in job.report_md  # no Sources after it


def test_disagreeing_funding_figures_become_an_open_question(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer
) -> None:
    notes = "The founders told us they have raised $15 million in total."
    worker = searching(build_worker, web, **DEMO)
    job = written(worker, Material(notes=notes))
    research = worker.job_store.load_research(job.id)
    article = next(s for s in research.sources if "raises $12M" in s.title)
    [conflict] = source_conflicts(research.sources)
    assert f"$12M [{article.number}]" in conflict and "$15M [1]" in conflict

    diligence = section(job.report_md, "Open diligence questions")
    assert "Where the sources disagree" in diligence and f"$12M [{article.number}]" in diligence


def test_the_analysts_website_is_read_but_never_a_private_address(web: FakeSearchServer, demo: ReportsCelery) -> None:
    with Fetcher(trusted_networks=("127.0.0.1/32",), timeout=5) as trusting:
        site = f"{web.url}/articles/acme-team"
        research = gather_research(STARTUP, Material(website=site), None, trusting)
    [page] = research.sources
    assert (page.kind, page.url) == ("provided", site) and "45 people" in page.excerpt

    with Fetcher(timeout=5) as strict:  # FETCH_ALLOW_PRIVATE off, as in production
        for address in (site, "http://169.254.169.254/latest/meta-data/"):
            research = gather_research(STARTUP, Material(website=address), None, strict)
            assert research.sources == ()
            [warning] = research.warnings
            assert address in warning and "could not be read" in warning
    job = written(demo, Material(website=address))  # FETCH_ALLOW_PRIVATE off by default
    assert "169.254.169.254" in job.report_md.split("## Summary")[0]  # the reader is told, up front


def test_a_document_that_hits_a_limit_is_reported_and_the_report_uses_what_was_read(demo: ReportsCelery) -> None:
    """The worker reads uploads (in a child process with limits): a bomb's pages past its first
    are not read, the report says so at the top, and the other documents are used as usual."""
    bomb = shared_stream_bomb(16, inflated_bytes=70 * 1024 * 1024, first_page="Bomb Co. sells rockets.")
    material = Material(documents=(Document("bomb.pdf", pdf=bomb), deck(), Document("scan.pdf", pdf=minimal_pdf([[]]))))
    job = written(demo, material)

    sources = demo.job_store.load_research(job.id).sources
    assert [(s.title, s.excerpt) for s in sources] == [
        ("bomb.pdf", "Bomb Co. sells rockets."),
        ("deck.pdf", PDF_SENTENCE),
    ]
    top = job.report_md.split("## Summary")[0]
    assert "bomb.pdf: too large to read after 1 page." in top
    assert "scan.pdf: The PDF has no extractable text" in top
    assert job.state == "SUCCESS"


def test_a_website_cannot_put_a_link_into_the_report_s_warnings(demo: ReportsCelery) -> None:
    """The warning quotes the website as typed: it is shown as text, as the Sources list shows
    titles, so an address cannot become a live link (or emphasis, or HTML) at the top of a report."""
    website = "http://127.0.0.1/[Reset your password](https://evil.example/login)*now*<b>"
    job = written(demo, Material(website=website))
    top = render_report(job.report_md.split("*Generated")[0]).html  # the banners and the warnings
    assert "evil.example" in top and 'href="https://evil' not in top and "<a " not in top
    assert "<em>" not in top and "<b>" not in top
    assert "[Reset your password](https://evil.example/login)*now*&lt;b&gt;" in top


def test_a_search_that_is_down_retries_the_job_instead_of_writing_without_sources(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fetcher: Fetcher
) -> None:
    for topic in TOPIC_QUERIES:
        web.script(query(topic), Script(status=503))
    with pytest.raises(SearchUnavailable, match="SearXNG"):
        gather_research(STARTUP, Material(), SearXNGSearch(base_url=web.url), fetcher)

    # In the job's first batch: a transient error (the task retries it), no sources stored, so the
    # retry searches again, and not one call paid for.
    for topic in TOPIC_QUERIES:
        web.script(query(topic), Script(status=503))
    worker = searching(build_worker, web, **DEMO)
    job_id = worker.job_store.create_job(STARTUP).id
    with pytest.raises(SearchUnavailable):
        run_report(worker, job_id)
    assert worker.job_store.load_research(job_id) is None and not worker.job_store.get_job(job_id).calls_sent


def test_a_search_backend_chosen_but_not_configured_fails_the_job_at_once(
    build_worker: Callable[..., ReportsCelery],
) -> None:
    worker = build_worker(search_backend="searxng", **DEMO)  # and no SEARXNG_URL
    with pytest.raises(FatalProviderError, match="SEARXNG_URL"):
        run_report(worker, worker.job_store.create_job(STARTUP).id)


# Dates and recent news.


def test_an_old_page_is_marked_old_and_a_section_resting_only_on_it_says_so(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    """The founders' search finds only a page whose metadata dates it two years back: the Team
    section rests on it alone."""
    old_url = f"{web.url}{OLD_ARTICLE}"
    web.script(query("founders"), Script(hits=(Hit("Founding story", old_url, "Two engineers founded Acme."),)))
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    job = written(worker)
    research = worker.job_store.load_research(job.id)
    [page] = [source for source in research.sources if source.url == old_url]
    assert (page.published, page.accessed, page.old) == (days_ago(730), TODAY.isoformat(), True)

    listed = [line for line in section(job.report_md, "Sources").splitlines() if old_url in line]
    assert listed and listed[0].endswith(f"published {days_ago(730)} (*old*), accessed {TODAY.isoformat()}")
    team = section(job.report_md, "Team")
    assert team.startswith("*All sources of this section are more than 18 months old.*\n\n")
    assert f"[{page.number}]" in team
    # Other sections also cite a page without a date, which is never old.
    assert "months old" not in section(job.report_md, "Snapshot")
    assert job.calls == TOTAL_STEPS  # the line costs no call


def test_source_max_age_days_decides_what_is_old(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer
) -> None:
    old_url = f"{web.url}{OLD_ARTICLE}"
    web.script(query("founders"), Script(hits=(Hit("Founding story", old_url, "Two engineers founded Acme."),)))
    worker = searching(build_worker, web, source_max_age_days=1000, **DEMO)
    job = written(worker)
    [page] = [s for s in worker.job_store.load_research(job.id).sources if s.url == old_url]
    assert page.published == days_ago(730) and not page.old
    assert "(*old*)" not in job.report_md.split(old_url, 2)[-1].splitlines()[0]


def test_recent_news_is_listed_newest_first_dated_and_cited_without_a_model_call(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    """The fake's news: 95, 20, 500 days old, undated, 200 days old, in that order. The last
    twelve months are listed, newest first; the older and the undated are not sources at all."""
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    job = written(worker)
    research = worker.job_store.load_research(job.id)
    by_url = {source.url: source for source in research.sources}
    listed = ["/news/acme-europe", "/news/acme-cfo", "/news/acme-award"]
    assert section(job.report_md, "Recent news").splitlines() == [
        f"- **{NEWS[path][1]}**: {NEWS[path][0]} [{by_url[web.url + path].number}]" for path in listed
    ]
    assert all(by_url[web.url + path].kind == "news" for path in listed)
    assert f"{web.url}/news/acme-trade-show" not in by_url and f"{web.url}/news/acme-undated" not in by_url

    sources = section(job.report_md, "Sources")
    for path in listed:
        line = next(line for line in sources.splitlines() if f"({web.url}{path})" in line)
        assert line.endswith(f"published {NEWS[path][1]}, found by the news search {TODAY.isoformat()}")
    headings = re.findall(r"^## (.+)$", job.report_md, re.MULTILINE)
    assert headings[-3:] == ["Open diligence questions", "Recent news", "Sources"]
    assert job.calls == TOTAL_STEPS and job.citations_removed == 2 * (TOTAL_STEPS - 1)
    [asked] = web.news_requests()
    assert asked.query == {"q": [NEWS_QUERY], "format": ["json"], "categories": ["news"], "time_range": ["year"]}


def test_a_news_item_already_read_as_a_page_keeps_its_number_and_the_page_s_own_date(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer
) -> None:
    """The undated page gets the news result's date; the article that dates itself 2024 is, by
    its own claim, not recent news, whatever the news search said."""
    undated, dated = f"{web.url}/articles/undated", f"{web.url}/articles/acme-raises"
    hits = (Hit("Market overview", undated, "Growing.", days_ago(5)), Hit("Acme raises", dated, "$12M.", days_ago(3)))
    web.script_news(NEWS_QUERY, Script(hits=hits))
    worker = searching(build_worker, web, **DEMO)
    job = written(worker)
    research = worker.job_store.load_research(job.id)
    [page] = [source for source in research.sources if source.url == undated]
    assert (page.kind, page.published) == ("web", days_ago(5))
    assert len([source for source in research.sources if source.url in (undated, dated)]) == 2  # no duplicates
    assert section(job.report_md, "Recent news") == f"- **{days_ago(5)}**: {page.title} [{page.number}]"


@pytest.mark.parametrize(
    "hits",
    [
        (),
        (Hit("Old news", "https://news.example/old", "Old.", days_ago(400)), Hit("Undated", "https://x.example", "?")),
    ],
    ids=["nothing", "only-old-or-undated"],
)
def test_no_recent_news_says_so(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, hits: tuple[Hit, ...]
) -> None:
    web.script_news(NEWS_QUERY, Script(hits=hits))
    worker = searching(build_worker, web, **DEMO)
    job = written(worker)
    assert section(job.report_md, "Recent news") == NO_NEWS
    research = worker.job_store.load_research(job.id)
    assert research.news == () and all(source.kind != "news" for source in research.sources)


def test_a_failing_news_search_is_a_warning_and_the_report_is_still_written(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer
) -> None:
    web.script_news(NEWS_QUERY, Script(status=503))
    worker = searching(build_worker, web, **DEMO)
    job = written(worker)
    assert job.state == "SUCCESS"
    top = job.report_md.split("## Summary")[0]
    assert "The news search failed: SearXNG had a server error (503)." in top
    assert section(job.report_md, "Recent news") == NEWS_UNAVAILABLE
    assert section(job.report_md, "Snapshot") != NO_INFORMATION  # the topics' pages were read as usual


# Figures and claims, checked against the sources the report's sentences cite.

NOTES = "Call with the CEO: Acme raised 12 million dollars and employs 45 people across two sites."


def source_number(prompt: str, title: str) -> int:
    """The number a prompt gives the source whose title starts with `title`."""
    return int(re.search(rf'<source number="(\d+)">\nTitle: {re.escape(title)}', prompt).group(1))  # type: ignore[union-attr]


def answering(**sections: Callable[[str], str]) -> Reply:
    """The fake model's usual answers, except for the sections named (by title), which answer
    with the text their function makes of the prompt."""

    def answer(prompt: str) -> str | None:
        for title, write in sections.items():
            if f"Now write the section “{title}”" in prompt:
                return write(prompt)
        return None

    return Reply.answering(answer)


def test_figures_not_in_their_cited_source_are_marked_listed_and_counted(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer, api_client: FlaskClient
) -> None:
    def snapshot(prompt: str) -> str:
        article = source_number(prompt, "Acme Robotics raises")
        return (
            f"Acme Robotics raised a $15M Series A [{article}].\n\n"  # the article says $12 million
            "The founders told us they raised $12M [1].\n\n"  # the notes say "12 million dollars"
            "The company has 300 customers."  # a figure with no source at all
        )

    market = "We estimate the serviceable market at $2B, based on 40,000 warehouses paying $50k a year each."
    fake_llm.set_default("openai", answering(Snapshot=snapshot, **{"Market size": lambda prompt: market}))
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    job = written(worker, Material(notes=NOTES))
    markdown = job.report_md
    article = next(s for s in worker.job_store.load_research(job.id).sources if "raises" in s.title).number

    snapshot_text = section(markdown, "Snapshot")
    assert f"Acme Robotics raised a $15M ⚠[^check-1] Series A [{article}]." in snapshot_text
    assert "The founders told us they raised $12M [1]." in snapshot_text  # other notation: supported
    assert "The company has 300 customers ⚠[^check-2]." in snapshot_text
    assert section(markdown, "Market size") == market  # an estimate that says how it was made
    assert f"[^check-1]: **$15M**: not found in the cited source [{article}]." in markdown
    assert "[^check-2]: **300 customers**: not found in the cited source: the sentence cites no source." in markdown
    assert section(markdown, "Figures to verify").splitlines() == [
        f"- **$15M** in *Snapshot*: not found in the cited source (cited [{article}]).",
        "- **300 customers** in *Snapshot*: not found in the cited source (no source cited).",
    ]

    # The counts: on the job, in the report's header, in /status and on the report page, and
    # always those of the marks.
    assert job.figures_unsupported == 2 == len(figure_notes(markdown))
    supported = job.figures_checked - 2
    assert supported > 0  # the fake's usual answers quote their sources, figures and all
    header = markdown.split("## Summary")[0]
    assert f"*Figures checked against their sources: {job.figures_checked}; {supported} found, 2 not found" in header
    status = api_client.get(f"/status/{job.id}").get_json()
    assert status["figures"] == {"checked": job.figures_checked, "supported": supported, "unsupported": 2}
    page = api_client.get(f"/reports/{job.id}").get_data(as_text=True)
    assert f"{job.figures_checked} checked against their sources" in page and "2 not found in the cited sources" in page
    assert page.count('<sup id="fnref:check-') == markdown.count("⚠[^check-")


def test_a_claim_whose_citations_were_all_invented_is_marked_and_reads_as_a_sentence(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    """The fake model ends every sourced answer with "A figure nobody published [97], see
    https://invented…": that line keeps its words, loses its dangling "see", and is marked."""
    worker = searching(build_worker, web, **fake_llm_settings(fake_llm))
    markdown = written(worker).report_md
    lines = [line for line in markdown.splitlines() if line.startswith("- A figure nobody published")]
    assert len(lines) == TOTAL_STEPS - 2  # every rendered step given sources: the sections, not the plan or summary
    assert all(re.fullmatch(r"- A figure nobody published ⚠\[\^check-\d+\]\.", line) for line in lines), lines
    assert "Unsupported: every source this sentence cited was one the pipeline never read." in markdown
    assert ", see." not in markdown and " ." not in markdown and INVENTED_URL not in markdown


def test_the_counts_of_a_resumed_report_are_those_of_its_marks(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer, fake_llm: FakeLLMServer
) -> None:
    """Steps written before a failure and after the retry are counted once each: the counts come
    from the assembled report, not from adding up what each attempt saw."""
    traction = "The company has 300 customers and grew 40% last quarter."
    fake_llm.set_default("openai", answering(**{"Traction signals": lambda prompt: traction}))
    fake_llm.script("openai", *[Reply.ok()] * 6, Reply.server_error(503))
    worker = searching(build_worker, web, llm_max_retries=0, report_parallelism=1, **fake_llm_settings(fake_llm))
    job_id = worker.job_store.create_job(STARTUP).id
    with pytest.raises(TransientProviderError):
        run_report(worker, job_id)
    run_report(worker, job_id)
    job = worker.job_store.get_job(job_id)
    assert job.figures_unsupported == 2 == len(figure_notes(job.report_md))
    assert f"*Figures checked against their sources: {job.figures_checked}; " in job.report_md


def figure_notes(markdown: str) -> list[str]:
    """The footnotes of figures not found in their sources."""
    return re.findall(r"^\[\^check-\d+\]: \*\*.+\*\*: not found in the cited source", markdown, re.MULTILINE)


def test_a_page_that_is_only_navigation_and_boilerplate_is_not_a_source(
    web: FakeSearchServer, fetcher: Fetcher
) -> None:
    page = Hit("Acme Robotics | Careers", f"{web.url}/boilerplate", "Careers at Acme")
    team = Hit("Inside Acme Robotics' engineering team", f"{web.url}/articles/acme-team", "45 people")
    for topic in TOPIC_QUERIES:
        web.script(query(topic), Script(hits=(page, team)))
    research = gather_research(
        STARTUP, Material(website=f"{web.url}/boilerplate"), SearXNGSearch(base_url=web.url), fetcher
    )
    assert "/boilerplate" in web.paths()  # read, and found to hold nothing to cite
    assert [(s.number, s.url) for s in research.sources if s.kind != "news"] == [(1, team.url)]
    assert research.topics["company"] == (1,)
    [warning] = research.warnings
    assert "/boilerplate) has no article text to cite" in warning


def test_one_page_under_tracking_parameters_is_one_source_listed_without_them(
    web: FakeSearchServer, fetcher: Fetcher
) -> None:
    """A search that finds the same article three times, with `utm_*`, `fbclid` and a fragment:
    read once, listed under its plain address, numbered once in the topic."""
    team, raises = f"{web.url}/articles/acme-team", f"{web.url}/articles/acme-raises"
    hits = (
        Hit("Team", f"{team}?utm_source=newsletter&utm_medium=email", "45 people"),
        Hit("Team", f"{team}?fbclid=IwAR0abc", "45 people"),
        Hit("Team", f"{team}#founders", "45 people"),
        Hit("Raise", f"{raises}?ref_src=twsrc%5Etfw&gclid=xyz", "$12M"),
    )
    web.script(query("founders"), Script(hits=hits))
    research = gather_research(STARTUP, Material(), SearXNGSearch(base_url=web.url), fetcher)
    numbers = research.topics["founders"]
    assert len(numbers) == len(set(numbers)) == 2
    by_number = {source.number: source.url for source in research.sources}
    assert [by_number[n] for n in numbers] == [team, raises]
    assert sum("/articles/acme-team" in path for path in web.paths()) == 1
    assert "utm_source" not in render_sources(research.sources)


@pytest.mark.parametrize(
    ("title", "text", "article"),
    [
        ("Careers", "Home\n|\nAbout\n|\nJobs\nCareers\nWe use cookies. Accept all.", False),
        ("Acme raises $12M", "Acme raises $12M", False),
        ("", "", False),
        ("Acme raises $12M", "Acme raises $12M\n" + "Acme Robotics has raised a round of funding. " * 4, True),
    ],
)
def test_what_counts_as_article_text(title: str, text: str, article: bool) -> None:
    assert has_article_text(title, text) is article


def test_facts_the_deck_and_the_web_state_differently_become_open_questions(
    build_worker: Callable[..., ReportsCelery], web: FakeSearchServer
) -> None:
    notes = (
        "The deck says we have 40 employees. The company was founded in 2019 and is headquartered in Denver. "
        "Annual recurring revenue is $6 million."
    )
    worker = searching(build_worker, web, **DEMO)
    job = written(worker, Material(notes=notes))
    sources = worker.job_store.load_research(job.id).sources
    article = next(s for s in sources if "raises" in s.title).number
    team = next(s for s in sources if "engineering team" in s.title).number
    diligence = section(job.report_md, "Open diligence questions")
    mine = "[1] (the analyst's material)"
    for question in (
        f"The sources disagree on head count: 40 {mine} or 45 [{team}].",
        f"The sources disagree on the founding year: 2019 {mine} or 2021 [{article}].",
        f"The sources disagree on where the company is headquartered: Denver {mine} or Austin [{team}].",
        f"The sources disagree on revenue: $6M {mine} or $4M [{article}].",
    ):
        assert question in diligence


def test_a_source_s_text_is_stored_clean(web: FakeSearchServer, build_worker: Callable[..., ReportsCelery]) -> None:
    """NUL bytes (which PostgreSQL's text columns refuse), control characters and ligatures are
    cleaned before the source is stored or prompted: run with TEST_DATABASE_URL for PostgreSQL."""
    worker = build_worker(fetch_allow_private=True)  # the fake web is on 127.0.0.1
    job = written(worker, Material(website=f"{web.url}/latex-notes.txt"))
    assert job.state == "SUCCESS"
    [source] = worker.job_store.load_research(job.id).sources
    assert source.excerpt == clean_text(LATEX_NOTES).strip()
    assert "\x00" not in source.excerpt and "first fleet" in source.excerpt and "office" in source.excerpt
