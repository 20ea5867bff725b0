"""What a report rests on: the analyst's own material and the web pages the pipeline read.

A plain module, like the pipeline: it searches with whichever backend it is given (queries planned
per topic: the company, its funding, founders, competitors, market), fetches the best results,
and numbers everything as sources. Sections then see only the sources of their topics (and
everything the analyst provided), so a section with nothing to rest on can say so instead of
letting the model guess.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from worker.providers.base import TransientProviderError
from worker.sources.base import SearchBackend, SearchError, SearchResult, normalise_url
from worker.sources.citations import Source
from worker.sources.documents import read_pdf
from worker.sources.fetch import Fetcher, FetchError

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
# A page whose text, its title aside, is shorter than this is navigation or boilerplate (a cookie
# notice, a footer, "Home | About | Jobs"), not an article: nothing in it could be cited.
MIN_ARTICLE_WORDS = 25


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
        )


def gather_research(
    startup: str,
    material: Material,
    search: SearchBackend | None,
    fetcher: Fetcher | None,
    *,
    results_per_query: int = 5,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Research:
    """Number the analyst's material, then (with a search backend) search each topic, read the
    best pages and number them too. Pages that cannot be read, and pages with no article text
    (`has_article_text`), are left out: a source is only ever something the pipeline actually read
    and could cite."""
    today = now().date().isoformat()
    sources: list[Source] = []
    warnings: list[str] = []

    def add(title: str, url: str | None, text: str, kind: str, published: str | None = None) -> int:
        number = len(sources) + 1
        sources.append(Source(number, title, url, text, kind, published, today))
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
        return Research(sources=tuple(sources), searched=False, warnings=tuple(warnings))

    found: dict[str, list[SearchResult]] = {}
    failures: list[SearchError] = []
    for topic, query in TOPIC_QUERIES.items():
        try:
            found[topic] = search.search(query.format(name=f'"{startup}"'), max_results=results_per_query)
        except SearchError as exc:
            failures.append(exc)
            warnings.append(f"The search for {topic} failed: {exc}")
    if failures and len(failures) == len(TOPIC_QUERIES):
        if any(f.retryable for f in failures):
            raise SearchUnavailable(f"Web search ({search.label}) is unavailable: {failures[0]}", provider=search.name)
    # Each distinct page is read once, however many topics found it.
    seen: dict[str, SearchResult] = {}
    wanted: dict[str, list[str]] = {}
    for topic, results in found.items():
        for result in results:
            key = normalise_url(result.url)
            if len(wanted.setdefault(topic, [])) >= PAGES_PER_TOPIC:
                break
            seen.setdefault(key, result)
            wanted[topic].append(key)
    pages = _fetch_all(fetcher, list(seen.values())) if fetcher is not None else {}
    numbers: dict[str, int] = {}
    for key, result in seen.items():
        page = pages.get(result.url)
        if page is not None and has_article_text(page.title, page.text):
            numbers[key] = add(
                page.title or result.title, page.final_url, page.text, "web", page.published or result.published
            )
    topics = {topic: tuple(numbers[k] for k in wanted.get(topic, []) if k in numbers) for topic in found}
    return Research(
        sources=tuple(sources), searched=True, backend=search.label, topics=topics, warnings=tuple(warnings)
    )


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
        return {url: page for url, page in pool.map(fetch, results) if page is not None}
