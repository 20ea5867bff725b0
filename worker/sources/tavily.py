"""Tavily's Search API: `POST {base}/search` with a JSON body, the key as a bearer token.

The answer is `{"query": …, "results": [{"title", "url", "content", "score", "published_date"?}]}`;
`published_date` comes only with `topic: "news"`, so it is read when present and not asked for.
"""

from __future__ import annotations

from worker.sources.base import HTTPSearchBackend, SearchResult, results_list, text_field

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
        count = max(1, min(max_results, MAX_RESULTS))
        payload = self.request_json(
            "POST",
            "/search",
            json={
                "query": query,
                "max_results": count,
                # "basic" costs one credit a search; the pages themselves are fetched by us.
                "search_depth": "basic",
                "topic": "general",
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
                published=text_field(item, "published_date") or None,
            )
            for item in items
        ]
        return [result for result in results if result.url.startswith(("http://", "https://"))][:count]
