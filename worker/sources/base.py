"""What every web-search backend returns and raises, and the URL normalisation that search results,
fetched pages and citations share.

A backend turns a query into a short list of `SearchResult`s. Its errors are `SearchError`s whose
text is safe to show a user: the backends build them from the status and a trimmed detail, and scrub
their own API key out of anything a server echoed back.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import courlan
import httpx2


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str
    #: The publication date the search API gave: an ISO date when it could be read
    #: (`dates.normalise_date`), else the API's own wording; None when it gave none.
    published: str | None = None


class SearchError(Exception):
    """A search failed. `str(error)` is a sentence a person can act on; it never holds a key."""

    def __init__(self, message: str, *, backend: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.backend = backend
        #: True when the same query may well succeed later (timeouts, 429, 5xx).
        self.retryable = retryable


class SearchConfigError(SearchError):
    """SEARCH_BACKEND names a backend whose key or address is not set, or a backend that does not exist."""


class SearchBackend(ABC):
    """A web search API. One module per backend; `build_search_backend` picks one from the settings."""

    #: The SEARCH_BACKEND value that selects it ("tavily", …).
    name: str = ""
    #: How people call it in messages ("Tavily").
    label: str = ""

    @abstractmethod
    def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """At most `max_results` results for `query`, best first, or a `SearchError`."""

    @abstractmethod
    def news(self, query: str, *, max_results: int, days: int) -> list[SearchResult]:
        """At most `max_results` news results for `query` from about the last `days` days, with
        their dates where the API gives them, or a `SearchError`. The API's own window is coarse
        (a year, a month) or best effort, so callers check the dates themselves."""


class HTTPSearchBackend(SearchBackend):
    """A backend reached over HTTP with httpx2: the request, and the one place its errors are worded.

    A new client per search keeps backends free of lifecycle and safe to share between threads; a
    report makes a handful of searches, so the lost connection reuse costs nothing that matters.
    """

    #: The variable that holds the key (or the address), named in error messages.
    key_variable: str = ""

    def __init__(self, *, base_url: str, timeout: float = 10.0, secret: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._secret = secret

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body, or raise a classified `SearchError`."""
        try:
            # trust_env=False: a proxy or .netrc from the worker's environment is nobody's intent here.
            with httpx2.Client(timeout=self.timeout, trust_env=False) as client:
                response = client.request(
                    method, f"{self.base_url}{path}", params=params, json=json, headers=dict(headers or {})
                )
        except httpx2.TimeoutException:
            raise self.error(f"{self.label} did not answer within {self.timeout:g} s.", retryable=True) from None
        except httpx2.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise self.error(f"{self.label} could not be reached: {reason}.", retryable=True) from None
        if response.status_code >= 400:
            raise self.status_error(response.status_code, response.text)
        try:
            return response.json()
        except ValueError:
            raise self.error(f"{self.label} returned a malformed response (not JSON).", retryable=True) from None

    def status_error(self, status: int, detail: str) -> SearchError:
        detail = self.scrub(error_detail(detail))
        if status in (401, 403):
            return self.error(f"{self.label} rejected the API key ({status}): check {self.key_variable}.")
        if status == 404:
            return self.error(f"{self.label} has no search endpoint at {self.base_url} (404): check the address.")
        if status == 429:
            return self.error(f"{self.label} is rate-limiting our searches (429).", retryable=True)
        if status >= 500:
            return self.error(f"{self.label} had a server error ({status}).", retryable=True)
        return self.error(f"{self.label} rejected the search ({status}): {detail or 'no detail given'}.")

    def malformed(self, what: str) -> SearchError:
        return self.error(f"{self.label} returned a malformed response ({what}).", retryable=True)

    def error(self, message: str, *, retryable: bool = False) -> SearchError:
        return SearchError(self.scrub(message), backend=self.name, retryable=retryable)

    def scrub(self, text: str) -> str:
        """Remove the key from text a server sent back, in case it echoed the request."""
        return text.replace(self._secret, "***") if self._secret else text


def error_detail(body: str) -> str:
    """The message of an error body, short: the first "error", "detail" or "message" string of a
    JSON body (however nested), else the text without HTML tags."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = None
    pending = [payload]
    while pending:
        item = pending.pop(0)
        if isinstance(item, Mapping):
            for key in ("error", "detail", "message"):
                if isinstance(item.get(key), str) and item[key].strip():
                    return " ".join(item[key].split())[:200]
            pending.extend(item.values())
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())[:200]


def results_list(payload: Any, *keys: str) -> list[Mapping[str, Any]] | None:
    """The objects in the list at `payload[keys[0]][keys[1]]…`; None when there is no list there."""
    for key in keys:
        payload = payload.get(key) if isinstance(payload, Mapping) else None
    if not isinstance(payload, list):
        return None
    return [item for item in payload if isinstance(item, Mapping)]


def text_field(item: Mapping[str, Any], *names: str) -> str:
    """The first of `names` that holds a non-empty string, stripped; "" when none does."""
    for name in names:
        value = item.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def cap_text(text: str, max_chars: int) -> str:
    """`text` in at most `max_chars` characters: cut at a word boundary when there is one near the
    cut, and ending in an ellipsis to show it was cut."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    if max_chars < 10:
        return text[:max_chars]
    cut = text[: max_chars - 2]
    space = cut.rfind(" ", len(cut) - 200)
    return (cut[:space] if space > 0 else cut).rstrip() + " …"


def canonical_url(url: str) -> str:
    """The address a page is listed under: courlan's normalisation (scheme and host in lower case,
    no default port, query sorted, tracking parameters such as `utm_*`, `fbclid`, `gclid`,
    `mc_cid`, `ref_src` dropped) and no fragment. Non-strict, because strict mode keeps only
    courlan's short list of allowed parameters and would merge `?id=1` with `?id=2`."""
    try:
        normal = courlan.normalize_url(url.strip())
    except ValueError:
        return url.strip()
    return urlunsplit(urlsplit(normal)._replace(fragment=""))


def normalise_url(url: str) -> str:
    """One spelling per page, to spot duplicates and to match a cited URL against the sources:
    `canonical_url` without a trailing slash, so that `https://Example.com/a/?utm_source=x` is
    `https://example.com/a`."""
    parts = urlsplit(canonical_url(url))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def drop_duplicates(results: Iterable[SearchResult]) -> list[SearchResult]:
    """The results without repeats of a page already listed (same `normalise_url`), first kept."""
    seen: set[str] = set()
    unique = []
    for result in results:
        key = normalise_url(result.url)
        if key not in seen:
            seen.add(key)
            unique.append(result)
    return unique
