"""How recent a report's sources are: which are old, the line that says a section rests only on
old ones, and the Recent news section.

The Recent news section is assembled here from the dated results of the backend's news search,
without a model call. Analysts pay per call, and a list of dated headlines needs no prose; a model
asked to write it could drop an item, reorder it or invent one with a plausible date, while a list
built from the results can only show what the search returned, sorted by the dates the results
carry. What is lost is a reading of what the news means: the sections and the summary, written by
the model from the pages read, are still where that belongs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from worker.sources.base import SearchBackend, SearchResult, drop_duplicates
from worker.sources.citations import Source, cited_numbers, escape_markdown
from worker.sources.dates import parse_date

if TYPE_CHECKING:
    from worker.research import Research

NEWS_TITLE = "Recent news"
#: How far back the news search looks: the last twelve months.
NEWS_DAYS = 365
#: News results asked for; the dated ones from the window are listed.
MAX_NEWS_ITEMS = 8
NO_NEWS = "No recent news found."
NEWS_NOT_SEARCHED = "Recent news was not searched: no web search backend is configured."
NEWS_UNAVAILABLE = "Recent news could not be searched for this report."


def age_in_days(published: str | None, on: str | None) -> int | None:
    """Days from the date `published` states to the date `on`; None when either cannot be read."""
    published_on, on_day = parse_date(published), parse_date(on)
    return None if published_on is None or on_day is None else (on_day - published_on).days


def is_old(published: str | None, accessed: str | None, max_age_days: int) -> bool:
    """True when `published` is more than `max_age_days` before `accessed`; never for a page
    that states no date we can read."""
    age = age_in_days(published, accessed)
    return age is not None and age > max_age_days


def age_in_words(days: int) -> str:
    """The age limit as a reader says it: 540 days are "18 months", 45 are "45 days"."""
    return f"{round(days / 30)} months" if days >= 60 else f"{days} days"


def note_old_sources(body: str, sources: Sequence[Source], max_age_days: int) -> str:
    """`body` with a line in front of it when every source it cites is old; as it was otherwise."""
    by_number = {source.number: source for source in sources}
    cited = [by_number[number] for number in cited_numbers(body) if number in by_number]
    if not cited or not all(source.old for source in cited):
        return body
    return f"*All sources of this section are more than {age_in_words(max_age_days)} old.*\n\n{body}"


def within(published: str | None, found: str | None, days: int = NEWS_DAYS) -> bool:
    """True when `published` is a date no more than `days` before `found`, the day it was found."""
    age = age_in_days(published, found)
    return age is not None and age <= days


def find_recent_news(
    search: SearchBackend, startup: str, today: date, *, max_results: int = MAX_NEWS_ITEMS, days: int = NEWS_DAYS
) -> list[SearchResult]:
    """The news search's results for `startup` that carry a date within the last `days` days, one
    per page, in the backend's order. Undated results are left out: they cannot be placed in time,
    and a backend's window is not always applied (SearXNG's engines may ignore it). Raises
    `SearchError`."""
    results = drop_duplicates(search.news(f'"{startup}"', max_results=max_results, days=days))
    return [result for result in results if within(result.published, today.isoformat(), days)]


def render_recent_news(research: Research | None) -> str:
    """The body of the Recent news section: one line per item, newest first, its date, title and
    citation; or a sentence saying there is none, or why news was not searched.

    An item's date is its source's, as the Sources list shows it: for a page the pipeline had read
    anyway, the page's own date where it states one, and the item is left out when that date is
    not recent after all."""
    if research is None or not research.searched:
        return NEWS_NOT_SEARCHED
    if research.news is None:
        return NEWS_UNAVAILABLE
    by_number = {source.number: source for source in research.sources}
    items = [by_number[number] for number in research.news if number in by_number]
    items = [source for source in items if within(source.published, source.accessed)]
    if not items:
        return NO_NEWS
    items.sort(key=lambda source: parse_date(source.published) or date.min, reverse=True)
    return "\n".join(
        f"- **{escape_markdown(source.published or '')}**: {escape_markdown(source.title) or 'Untitled'} "
        f"[{source.number}]"
        for source in items
    )
