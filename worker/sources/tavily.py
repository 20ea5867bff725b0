"""Tavily's Search API: `POST {base}/search` with a JSON body, the key as a bearer token.

The answer is `{"query": …, "results": [{"title", "url", "content", "score", "published_date"?}]}`.
News is the same endpoint with `topic: "news"` and `days` (how far back, counted from today);
`published_date` (RFC 2822, "Thu, 05 Dec 2024 15:01:15 GMT") comes with news results only, so it is
read when present and not asked for.
"""

from __future__ import annotations

from typing import Any

from worker.sources.base import HTTPSearchBackend, SearchResult, results_list, text_field
from worker.sources.dates import normalise_date

DEFAULT_BASE_URL = "https://api.tavily.com"
#: Tavily's own ceiling on `max_results`.
MAX_RESULTS = 20


class TavilySearch(HTTPSearchBackend):
    name = "tavily"
    label = "Tavily"
    key_variable = "TAVILY_API_KEY"

    def __init__(self, *, api_key: str, base_url: str = DEFAULT_BASE_URL, timeout: float = 10.0) -> None:
        super().__init__(base_url=base_url, timeout=timeout, secret=api_key)
        self.api_key = api_key

    def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        return self._search(query, max_results, topic="general")

    def news(self, query: str, *, max_results: int, days: int) -> list[SearchResult]:
        return self._search(query, max_results, topic="news", days=max(1, days))

    def _search(self, query: str, max_results: int, **options: Any) -> list[SearchResult]:
        count = max(1, min(max_results, MAX_RESULTS))
        payload = self.request_json(
            "POST",
            "/search",
            json={
                "query": query,
                "max_results": count,
                # "basic" costs one credit a search; the pages themselves are fetched by us.
                "search_depth": "basic",
                **options,
                "include_answer": False,
                "include_raw_content": False,
                "include_images": False,
            },
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        items = results_list(payload, "results")
        if items is None:
            raise self.malformed("no results list")
        results = [
            SearchResult(
                title=text_field(item, "title") or text_field(item, "url"),
                url=text_field(item, "url"),
                snippet=text_field(item, "content"),
                published=normalise_date(text_field(item, "published_date")),
            )
            for item in items
        ]
        return [result for result in results if result.url.startswith(("http://", "https://"))][:count]
