"""A self-hosted SearXNG: `GET {SEARXNG_URL}/search?q=…&format=json`.

The instance must list `json` under `search.formats` in its settings.yml, or it answers 403 (the
error says so). Results are `results[]` with `title`, `url`, `content` and `publishedDate` (null or
an ISO timestamp). SearXNG has no parameter for the number of results, so the list is cut here.
News is the same endpoint with `categories=news` and `time_range` (`day`, `month` or `year`), which
only the engines that support a time range honour: the caller checks the dates.
No key: the address is the configuration, and it usually points at the operator's own network.
"""

from __future__ import annotations

from worker.sources.base import HTTPSearchBackend, SearchError, SearchResult, results_list, text_field
from worker.sources.dates import normalise_date

#: SearXNG's `time_range` values, each with the days it covers; a longer window gets none.
TIME_RANGES = ((1, "day"), (31, "month"), (365, "year"))


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
        return self._search({"q": query, "format": "json"}, max_results)

    def news(self, query: str, *, max_results: int, days: int) -> list[SearchResult]:
        params = {"q": query, "format": "json", "categories": "news"}
        window = next((name for limit, name in TIME_RANGES if days <= limit), None)
        return self._search(params | {"time_range": window} if window else params, max_results)

    def _search(self, params: dict[str, str], max_results: int) -> list[SearchResult]:
        payload = self.request_json("GET", "/search", params=params)
        items = results_list(payload, "results")
        if items is None:
            raise self.malformed("no results list")
        results = [
            SearchResult(
                title=text_field(item, "title") or text_field(item, "url"),
                url=text_field(item, "url"),
                snippet=text_field(item, "content"),
                published=normalise_date(text_field(item, "publishedDate")),
            )
            for item in items
        ]
        return [result for result in results if result.url.startswith(("http://", "https://"))][: max(1, max_results)]
