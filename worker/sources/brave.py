"""Brave Search's Web Search API: `GET {base}/res/v1/web/search?q=…&count=…` with the key in the
`X-Subscription-Token` header; and its News Search API, `GET {base}/res/v1/news/search` with the
same key and `freshness` (`pd`, `pw`, `pm`, `py`: the past day, week, month or year, or a range
`YYYY-MM-DDtoYYYY-MM-DD`).

Web results are under `web.results[]`, news results under `results[]`, each with `title`, `url`,
`description` (which carries `<strong>` highlighting, removed here) and, when Brave dated the page,
`page_age` (an ISO timestamp) and `age` (its own wording, such as "March 5, 2024" or "3 days ago").
A web query with no hits may have no `web` key at all.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

from worker.sources.base import HTTPSearchBackend, SearchResult, results_list, text_field
from worker.sources.dates import normalise_date

DEFAULT_BASE_URL = "https://api.search.brave.com"
#: Brave's own ceiling on `count`.
MAX_RESULTS = 20
_TAGS = re.compile(r"<[^>]+>")


def plain_text(fragment: str) -> str:
    """A snippet without Brave's highlighting tags and HTML entities."""
    return " ".join(html.unescape(_TAGS.sub("", fragment)).split())


class BraveSearch(HTTPSearchBackend):
    name = "brave"
    label = "Brave Search"
    key_variable = "BRAVE_API_KEY"

    def __init__(self, *, api_key: str, base_url: str = DEFAULT_BASE_URL, timeout: float = 10.0) -> None:
        super().__init__(base_url=base_url, timeout=timeout, secret=api_key)
        self.api_key = api_key

    def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        return self._search("/res/v1/web/search", {"q": query}, max_results, ("web", "results"))

    def news(self, query: str, *, max_results: int, days: int) -> list[SearchResult]:
        params = {"q": query, "freshness": freshness(days, datetime.now(UTC).date())}
        return self._search("/res/v1/news/search", params, max_results, ("results",))

    def _search(
        self, path: str, params: dict[str, str | int], max_results: int, where: tuple[str, ...]
    ) -> list[SearchResult]:
        count = max(1, min(max_results, MAX_RESULTS))
        payload = self.request_json(
            "GET",
            path,
            params={**params, "count": count},
            headers={"X-Subscription-Token": self.api_key, "Accept": "application/json"},
        )
        if not isinstance(payload, dict):
            raise self.malformed("not a JSON object")
        items = results_list(payload, *where) or []
        results = [
            SearchResult(
                title=plain_text(text_field(item, "title")) or text_field(item, "url"),
                url=text_field(item, "url"),
                snippet=plain_text(text_field(item, "description")),
                published=normalise_date(text_field(item, "page_age", "age")),
            )
            for item in items
        ]
        return [result for result in results if result.url.startswith(("http://", "https://"))][:count]


def freshness(days: int, today: date) -> str:
    """Brave's `freshness` for the last `days` days: the smallest of its named windows that covers
    them, or a date range beyond a year."""
    for window, code in ((1, "pd"), (7, "pw"), (31, "pm"), (365, "py")):
        if days <= window:
            return code
    return f"{(today - timedelta(days=days)).isoformat()}to{today.isoformat()}"
