"""What a report rests on: the analyst's own material and the web pages the pipeline read.

A plain module, like the pipeline: it searches with whichever backend it is given (queries planned
per topic: the company, its funding, founders, competitors, market), fetches the best results,
and numbers everything as sources. Sections then see only the sources of their topics (and
everything the analyst provided), so a section with nothing to rest on can say so instead of
letting the model guess.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from worker.providers.base import TransientProviderError
from worker.recency import find_recent_news, is_old
from worker.sources.base import SearchBackend, SearchError, SearchResult, canonical_url, normalise_url
from worker.sources.citations import Source
from worker.sources.documents import read_pdf
from worker.sources.fetch import MIN_ARTICLE_WORDS, Fetcher, FetchError
from worker.sources.identity import Identity, identify_company, registrable_domain
from worker.sources.text import clean_text

logger = logging.getLogger(__name__)

# One query per topic; `{name}` is the startup's name in quotes.
TOPIC_QUERIES: dict[str, str] = {
    "company": "{name} company official site",
    "funding": "{name} funding round raised investors",
    "founders": "{name} founders CEO team",
    "competitors": "{name} competitors alternatives",
    "market": "{name} market size industry report",
}
ALL_TOPICS = tuple(TOPIC_QUERIES)
# The topics each step rests on. Steps not listed (plan, risks, thesis, diligence, summary) see all.
SECTION_TOPICS: dict[str, tuple[str, ...]] = {
    "snapshot": ("company", "funding"),
    "problem": ("company", "market"),
    "product": ("company",),
    "market": ("market", "competitors"),
    "business_model": ("company",),
    "traction": ("funding", "company"),
    "team": ("founders",),
    "competition": ("competitors",),
}
# Pages read per topic, and excerpt length and count per prompt: enough to rest a section on,
# few enough that a prompt stays a few thousand words.
PAGES_PER_TOPIC = 3
FETCH_THREADS = 4
EXCERPT_CHARS = 1500
PROVIDED_EXCERPT_CHARS = 6000
MAX_SOURCES_PER_STEP = 10
#: SOURCE_MAX_AGE_DAYS's default: a source published longer than this before it was read is old.
SOURCE_MAX_AGE_DAYS = 540


class SearchUnavailable(TransientProviderError):
    """Every search failed with an error that may pass (an outage, a rate limit): the job is
    retried later rather than written without the sources it should have had."""


@dataclass(frozen=True)
class Document:
    """A document the analyst uploaded: the PDF as received, until the worker reads it into text
    (documents stored before uploads were read by the worker have only their text)."""

    filename: str
    text: str = ""
    pdf: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Material:
    """What the analyst gave with the job: the company's website, pasted notes, documents."""

    website: str | None = None
    notes: str | None = None
    documents: tuple[Document, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.website or self.notes or self.documents)


@dataclass(frozen=True)
class Research:
    sources: tuple[Source, ...] = ()
    #: True when a search backend was asked; False means the report rests on the analyst's
    #: material and the model's own knowledge only.
    searched: bool = False
    backend: str = ""
    #: The numbers of the web sources found for each topic.
    topics: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: Things the reader should know (a website that could not be read, a search that failed).
    warnings: tuple[str, ...] = ()
    #: The website of the company the report is about, once known (`worker.sources.identity`).
    company_website: str | None = None
    #: The numbers of the sources the news search found (the Recent news section lists those
    #: dated within its window, newest first); None when news was not searched or its search failed.
    news: tuple[int, ...] | None = None
    #: Sources published longer than this before they were read are old.
    max_age_days: int = SOURCE_MAX_AGE_DAYS

    def for_step(self, key: str) -> list[Source]:
        """The sources step `key` rests on: everything provided, and the web sources of its topics."""
        wanted: set[int] = set()
        for topic in SECTION_TOPICS.get(key, ALL_TOPICS):
            wanted.update(self.topics.get(topic, ()))
        chosen = [s for s in self.sources if s.kind == "provided" or s.number in wanted]
        return chosen[:MAX_SOURCES_PER_STEP]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: str) -> Research:
        raw = json.loads(data)
        return cls(
            sources=tuple(Source(**s) for s in raw.get("sources", ())),
            searched=bool(raw.get("searched")),
            backend=raw.get("backend", ""),
            topics={k: tuple(v) for k, v in raw.get("topics", {}).items()},
            warnings=tuple(raw.get("warnings", ())),
            company_website=raw.get("company_website"),
            news=tuple(raw["news"]) if raw.get("news") is not None else None,
            max_age_days=raw.get("max_age_days", SOURCE_MAX_AGE_DAYS),
        )


def gather_research(
    startup: str,
    material: Material,
    search: SearchBackend | None,
    fetcher: Fetcher | None,
    *,
    results_per_query: int = 5,
    take_best: bool = False,
    max_age_days: int = SOURCE_MAX_AGE_DAYS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    anchor: str | None = None,
) -> Research:
    """Number the analyst's material, then (with a search backend) search each topic, read the
    best pages and number them too. Pages that cannot be read, and pages with no article text
    (`has_article_text`), are left out: a source is only ever something the pipeline actually read
    and could cite, or, for recent news, a dated result the news search returned. A news search
    that fails is a warning: the report is written without news.

    The company search comes first and decides which company the name means: the analyst's
    website if given, else the one candidate that matches best. When several match equally well
    it raises `CompanyAmbiguous` (nothing read, nothing paid) unless `take_best`, which takes the
    search's first and says so in the warnings. Later searches name the company's domain, and no
    page of another same-name company's domain, or naming only that domain, becomes a source.
    `anchor`, a website known from an earlier version, says which company it is as a website given
    by the analyst does, without being read as the analyst's material (`worker.rerun`)."""
    today = now().date().isoformat()
    sources: list[Source] = []
    warnings: list[str] = []

    def add(title: str, url: str | None, text: str, kind: str, published: str | None = None) -> int:
        """Every source passes here, so here its title and text are cleaned, once, before they are
        stored or reach a prompt (no NUL for PostgreSQL, no ligatures or private-use glyphs)."""
        number = len(sources) + 1
        old = is_old(published, today, max_age_days)
        url = canonical_url(url) if url else url  # listed without tracking parameters or fragment
        sources.append(Source(number, clean_text(title), url, clean_text(text), kind, published, today, old))
        return number

    if material.notes:
        add("Analyst's notes", None, material.notes, "provided")
    for document in material.documents:
        text, problem = document.text, None
        if document.pdf is not None:
            reading = read_pdf(document.pdf)  # in a child process, within its limits
            text, problem = reading.text, reading.problem
        if problem:
            warnings.append(f"{document.filename}: {problem}")
        if text:
            add(document.filename, None, text, "provided")
    if material.website and fetcher is not None:
        try:
            page = fetcher.fetch(material.website)
            if has_article_text(page.title, page.text):
                add(page.title or material.website, page.final_url, page.text, "provided", page.published)
            else:
                warnings.append(f"The website given with this job ({material.website}) has no article text to cite.")
        except FetchError as exc:
            warnings.append(f"The website given with this job ({material.website}) could not be read: {exc}")
    elif material.website:
        warnings.append(f"The website given with this job ({material.website}) was not read: fetching is off.")

    if search is None:
        return Research(
            sources=tuple(sources),
            searched=False,
            warnings=tuple(warnings),
            max_age_days=max_age_days,
            company_website=material.website or anchor,
        )

    found: dict[str, list[SearchResult]] = {}
    failures: list[SearchError] = []

    def search_topic(topic: str, name: str) -> None:
        try:
            found[topic] = search.search(TOPIC_QUERIES[topic].format(name=name), max_results=results_per_query)
        except SearchError as exc:
            failures.append(exc)
            warnings.append(f"The search for {topic} failed: {exc}")

    # The company's own search first: its results say which company the name means, before the
    # other searches are anchored to it and before any model is paid (CompanyAmbiguous otherwise).
    search_topic("company", f'"{startup}"')
    website = material.website or anchor
    identity = identify_company(startup, found.get("company", []), website=website, take_best=take_best)
    anchor = f'"{startup}" {identity.domain}' if identity.domain else f'"{startup}"'
    for topic in TOPIC_QUERIES:
        if topic != "company":
            search_topic(topic, anchor)
    if failures and len(failures) == len(TOPIC_QUERIES):
        if any(f.retryable for f in failures):
            raise SearchUnavailable(f"Web search ({search.label}) is unavailable: {failures[0]}", provider=search.name)
    if identity.guessed:
        others = ", ".join(c.domain for c in identity.others)
        warnings.append(
            f"Several companies are called {startup}: this report is about {identity.domain}, the search's "
            f"first result, and leaves out {others}. Submit it again with the website if you meant another."
        )
    other_domains = {c.domain for c in identity.others}
    recent: list[SearchResult] | None = None
    try:
        recent = [
            result
            for result in find_recent_news(search, startup, now().date())
            if registrable_domain(result.url) not in other_domains
            and not _about_another(f"{result.title} {result.snippet}", identity)
        ]
    except SearchError as exc:
        warnings.append(f"The news search failed: {exc}")
    # Each distinct page is read once, however many topics found it; none of another company's.
    seen: dict[str, SearchResult] = {}
    wanted: dict[str, list[str]] = {}
    for topic, results in found.items():
        for result in results:
            if registrable_domain(result.url) in other_domains:
                continue
            key = normalise_url(result.url)
            if key in wanted.setdefault(topic, []):
                continue
            if len(wanted[topic]) >= PAGES_PER_TOPIC:
                break
            seen.setdefault(key, result)
            wanted[topic].append(key)
    pages = _fetch_all(fetcher, list(seen.values())) if fetcher is not None else {}
    numbers: dict[str, int] = {}
    for key, result in seen.items():
        page = pages.get(result.url)
        if page is not None and has_article_text(page.title, page.text) and not _about_another(page.text, identity):
            # Two addresses that redirect to one page are one source.
            landed = normalise_url(page.final_url)
            if landed in numbers:
                numbers[key] = numbers[landed]
                continue
            numbers[key] = numbers[landed] = add(
                page.title or result.title, page.final_url, page.text, "web", page.published or result.published
            )
    topics = {topic: tuple(dict.fromkeys(numbers[k] for k in wanted.get(topic, []) if k in numbers)) for topic in found}
    news: tuple[int, ...] | None = None
    if recent is not None:
        cited: list[int] = []
        for result in recent:
            number = numbers.get(normalise_url(result.url))
            if number is None:  # a news item is cited by its result; a page already read, by that page
                number = add(result.title, result.url, result.snippet, "news", result.published)
            elif not sources[number - 1].published:
                old = is_old(result.published, today, max_age_days)
                sources[number - 1] = replace(sources[number - 1], published=result.published, old=old)
            cited.append(number)
        news = tuple(dict.fromkeys(cited))
    return Research(
        sources=tuple(sources),
        searched=True,
        backend=search.label,
        topics=topics,
        warnings=tuple(warnings),
        company_website=identity.website,
        news=news,
        max_age_days=max_age_days,
    )


def _about_another(text: str, identity: Identity) -> bool:
    """A page that names another company of the same name by its domain, and not ours."""
    lowered = text.lower()
    if identity.domain and identity.domain in lowered:
        return False
    return any(other.domain in lowered for other in identity.others)


def has_article_text(title: str, text: str) -> bool:
    """Whether a page's text holds more than its title and boilerplate: `MIN_ARTICLE_WORDS` words
    or more once every line that repeats the title is left out."""
    title_key = " ".join(title.split()).casefold()
    lines = [line for line in text.splitlines() if " ".join(line.split()).casefold() != title_key]
    return len(" ".join(lines).split()) >= MIN_ARTICLE_WORDS


def _fetch_all(fetcher: Fetcher, results: Sequence[SearchResult]) -> dict[str, object]:
    def fetch(result: SearchResult) -> tuple[str, object | None]:
        try:
            return result.url, fetcher.fetch(result.url)
        except FetchError as exc:
            logger.info("skipped %s: %s", result.url, exc)
            return result.url, None

    with ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="fetch") as pool:
        # Each fetch in a copy of this thread's context, so its log lines name the job too.
        futures = [pool.submit(contextvars.copy_context().run, fetch, result) for result in results]
        return {url: page for url, page in (future.result() for future in futures) if page is not None}
