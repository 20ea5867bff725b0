"""A self-hosted SearXNG: `GET {SEARXNG_URL}/search?q=…&format=json`.

The instance must list `json` under `search.formats` in its settings.yml, or it answers 403 (the
error says so). Results are `results[]` with `title`, `url`, `content` and `publishedDate` (null or
an ISO timestamp). SearXNG has no parameter for the number of results, so the list is cut here.
No key: the address is the configuration, and it usually points at the operator's own network.
"""

from __future__ import annotations

from worker.sources.base import HTTPSearchBackend, SearchError, SearchResult, results_list, text_field


class SearXNGSearch(HTTPSearchBackend):
    name = "searxng"
    label = "SearXNG"
    key_variable = "SEARXNG_URL"

    def __init__(self, *, base_url: str, timeout: float = 10.0) -> None:
        super().__init__(base_url=base_url, timeout=timeout)

    def status_error(self, status: int, detail: str) -> SearchError:
        if status == 403:
            return self.error(
                "SearXNG refused the JSON format (403): add json to search.formats in the instance's settings.yml."
            )
        if status == 401:
            return self.error("SearXNG asked for credentials (401): check SEARXNG_URL and the proxy in front of it.")
        return super().status_error(status, detail)

    def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        payload = self.request_json("GET", "/search", params={"q": query, "format": "json"})
        items = results_list(payload, "results")
        if items is None:
            raise self.malformed("no results list")
        results = [
            SearchResult(
                title=text_field(item, "title") or text_field(item, "url"),
                url=text_field(item, "url"),
                snippet=text_field(item, "content"),
                published=text_field(item, "publishedDate") or None,
            )
            for item in items
        ]
        return [result for result in results if result.url.startswith(("http://", "https://"))][: max(1, max_results)]
