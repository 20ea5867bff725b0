"""Fetch a web page and keep its main text, politely and within limits.

`Fetcher.fetch(url)` follows redirects itself (at most `max_redirects`), and for every hop:
checks the scheme, asks the site's robots.txt, connects only through the SSRF guard (ssrf.py:
private addresses refused after DNS resolution, the connection pinned to the vetted address),
refuses content types it cannot read before downloading, and stops reading past `max_bytes`.
HTML goes through trafilatura for the article's text and title, and htmldate for its date
(`published_date`); plain text is kept as it
is; a PDF goes to documents.read_pdf.

With a page cache (`page_cache.PageCache`), a page read before is asked for with its validators
(If-None-Match, If-Modified-Since) on the hop they belong to; a 304, or a body with the stored
hash, returns the stored extraction instead of extracting again. Every hop still goes through
the same checks, and a 200's body through the same size cap.

robots.txt, one fetch per origin and Fetcher (cached, thread-safe), through the same guarded
client. Its status decides as Python's `urllib.robotparser` always has: 401 and 403 mean the
whole site is off limits, any other 4xx means no rules. A robots.txt that cannot be had (network
error, 5xx, a refused redirect) counts as no rules too: a deliberate choice for a tool that reads a
handful of pages a report, where RFC 9309 would have a crawler stay away until it can read one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib import robotparser

import htmldate
import httpx2
import trafilatura
from htmldate.utils import load_html
from lxml.etree import XPath

from worker.sources.base import cap_text
from worker.sources.documents import Limits, read_pdf
from worker.sources.page_cache import CachedPage, PageCache, content_hash
from worker.sources.ssrf import AddressPolicy, AddressRefused, GuardedTransport, Resolver, check_scheme

if TYPE_CHECKING:
    from config import Settings

#: The product token robots.txt rules are matched against, and the start of our User-Agent.
ROBOTS_AGENT = "StartupReportsBot"
USER_AGENT = f"Mozilla/5.0 (compatible; {ROBOTS_AGENT}/1.0; research for investment memos)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
#: A page whose text, its title aside, is shorter than this is navigation or boilerplate (a cookie
#: notice, a footer, "Home | About | Jobs"), not an article: nothing in it could be cited.
MIN_ARTICLE_WORDS = 25
#: RFC 9309 asks crawlers to read at least 500 KiB of a robots.txt; more is not worth holding.
ROBOTS_MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class FetchedPage:
    url: str
    #: Where the last redirect led.
    final_url: str
    title: str
    text: str
    published: str | None = None


class FetchError(Exception):
    """The page could not be had: network trouble, an error status, a body too large, no text."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status when the server answered with an error.
        self.status = status


class FetchRefused(FetchError):
    """We chose not to fetch it: a private address, robots.txt, or a content type we do not read."""


def media_type(response: httpx2.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Fetcher:
    """One fetcher per job (or per worker): it holds a connection pool and the robots.txt cache."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_bytes: int = 2 * 1024 * 1024,
        max_chars: int = 20_000,
        allow_private: bool = False,
        trusted_networks: Iterable[str] = (),
        max_redirects: int = 5,
        pdf_max_pages: int = 50,
        user_agent: str = USER_AGENT,
        resolver: Resolver = socket.getaddrinfo,
        cache: PageCache | None = None,
    ) -> None:
        self.timeout = timeout
        self.cache = cache
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.max_redirects = max_redirects
        self.pdf_max_pages = pdf_max_pages
        policy = AddressPolicy(allow_private=allow_private, trusted_networks=trusted_networks)
        self.client = httpx2.Client(
            transport=GuardedTransport(policy, resolver=resolver),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": user_agent, "Accept": "text/html,application/xhtml+xml,text/plain,application/pdf"},
        )
        self._robots: dict[str, robotparser.RobotFileParser] = {}
        self._robots_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, cache: PageCache | None = None) -> Fetcher:
        return cls(
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            max_chars=settings.fetch_max_chars,
            allow_private=settings.fetch_allow_private,
            cache=cache,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, url: str) -> FetchedPage:
        """The page at `url`, its text capped to `max_chars`; FetchRefused or FetchError otherwise.
        With a cache, a page that did not change since it was stored is not extracted again."""
        cached = self.cache.get(url) if self.cache is not None else None
        response = self._open(url, obey_robots=True, cached=cached)
        try:
            final_url = str(response.url)
            if response.status_code == 304 and cached is not None:
                self._remember(url, cached, response, cached.content_hash)
                return replace(cached.page, url=url)
            if response.status_code == 304:  # a 304 to a request that was not conditional
                raise FetchError(f"{final_url} answered 304 to a request that asked for the page")
            kind = media_type(response)
            if kind and kind not in HTML_TYPES | TEXT_TYPES | PDF_TYPES:
                raise FetchRefused(f"{final_url} is {kind}, not a web page, text or PDF")
            body = self._read(response, self.max_bytes)
            encoding = response.charset_encoding
        finally:
            response.close()
        digest = content_hash(body)
        if cached is not None and cached.content_hash == digest and cached.page.final_url == final_url:
            page = replace(cached.page, url=url)  # the same bytes: the same extraction
        else:
            page = self._extract(url, final_url, kind, body, encoding)
        if self.cache is not None:
            self._remember(url, CachedPage(page, digest), response, digest)
        return page

    def _extract(self, url: str, final_url: str, kind: str, body: bytes, encoding: str | None) -> FetchedPage:
        if not kind:  # no Content-Type: judge by the first bytes
            head = body.lstrip()[:20].lower()
            kind = "application/pdf" if head.startswith(b"%pdf-") else "text/html" if head.startswith(b"<") else ""
            if not kind:
                raise FetchRefused(f"{final_url} did not say what it is, and does not look like HTML or PDF")
        if kind in PDF_TYPES:
            return self._pdf_page(url, final_url, body)
        if kind in TEXT_TYPES:
            text = body.decode(encoding or "utf-8", errors="replace")
            return self._page(url, final_url, title=_last_segment(final_url), text=text, published=None)
        title, text = extract_text(body, final_url)
        published = published_date(body, final_url)
        return self._page(url, final_url, title=title or _last_segment(final_url), text=text, published=published)

    def allowed_by_robots(self, url: str) -> bool:
        """What the site's robots.txt says about `url` for our agent (fetched once per origin)."""
        parsed = httpx2.URL(url)
        origin = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        with self._robots_lock:
            rules = self._robots.get(origin)
        if rules is None:
            rules = self._read_robots(origin)
            with self._robots_lock:
                rules = self._robots.setdefault(origin, rules)
        return rules.can_fetch(ROBOTS_AGENT, url)

    # Internals.

    def _page(self, url: str, final_url: str, *, title: str, text: str, published: str | None) -> FetchedPage:
        if not text.strip():
            raise FetchError(f"{final_url} has no readable text")
        return FetchedPage(
            url=url,
            final_url=final_url,
            title=" ".join(title.split())[:300],
            text=cap_text(text, self.max_chars),
            published=published or None,
        )

    def _pdf_page(self, url: str, final_url: str, body: bytes) -> FetchedPage:
        reading = read_pdf(body, Limits(max_pages=self.pdf_max_pages, max_chars=self.max_chars))
        if not reading.text:
            raise FetchError(f"{final_url}: {reading.problem}")
        return self._page(url, final_url, title=_last_segment(final_url), text=reading.text, published=None)

    def _remember(self, url: str, entry: CachedPage, response: httpx2.Response, digest: str) -> None:
        """Store the page with the validators of this answer (a 304 may send new ones)."""
        if self.cache is None:
            return
        etag = response.headers.get("etag") or entry.etag
        modified = response.headers.get("last-modified") or entry.last_modified
        self.cache.put(url, CachedPage(entry.page, digest, etag, modified, datetime.now(UTC)))

    def _open(self, url: str, *, obey_robots: bool, cached: CachedPage | None = None) -> httpx2.Response:
        """The streamed response at the end of the redirects, each hop checked; the caller closes it.
        The hop to the address `cached` was read from asks whether it changed (a 304 is returned)."""
        current = url
        for _hop in range(self.max_redirects + 1):
            try:
                check_scheme(current)
            except AddressRefused as exc:
                raise FetchRefused(f"{current}: {exc}") from None
            if obey_robots and not self.allowed_by_robots(current):
                raise FetchRefused(f"{current} is disallowed by the site's robots.txt")
            conditional: dict[str, str] = {}
            if cached is not None and str(httpx2.URL(current)) == cached.page.final_url:
                conditional = cached.validators()
            response = self._send(current, conditional)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                if response.status_code >= 400:
                    response.close()
                    raise FetchError(f"{current} answered {response.status_code}", status=response.status_code)
                return response
            response.close()
            try:
                current = str(response.url.join(location))
            except httpx2.InvalidURL:
                raise FetchError(f"{current} redirected to an invalid address") from None
        raise FetchError(f"{url} redirected more than {self.max_redirects} times")

    def _send(self, url: str, headers: Mapping[str, str] | None = None) -> httpx2.Response:
        try:
            return self.client.send(self.client.build_request("GET", url, headers=headers), stream=True)
        except AddressRefused as exc:
            raise FetchRefused(f"{url}: {exc}") from None
        except httpx2.TimeoutException:
            raise FetchError(f"{url} did not answer within {self.timeout:g} s") from None
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise FetchError(f"{url} could not be fetched: {exc or type(exc).__name__}") from None

    def _read(self, response: httpx2.Response, limit: int) -> bytes:
        """The body, or FetchError as soon as it grows past `limit` bytes (decoded, so a
        compressed body cannot unpack past the cap either)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"{response.url} is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"{response.url} is larger than {limit} bytes")
                chunks.append(chunk)
        except httpx2.TimeoutException:
            raise FetchError(f"{response.url} did not finish within {self.timeout:g} s") from None
        except httpx2.HTTPError as exc:
            raise FetchError(f"{response.url} broke off: {exc or type(exc).__name__}") from None
        return b"".join(chunks)

    def _read_robots(self, origin: str) -> robotparser.RobotFileParser:
        rules = robotparser.RobotFileParser(f"{origin}/robots.txt")
        try:
            response = self._open(f"{origin}/robots.txt", obey_robots=False)
            try:
                body = self._read(response, ROBOTS_MAX_BYTES)
            finally:
                response.close()
        except FetchError as exc:
            if exc.status in (401, 403):
                rules.disallow_all = True
            else:
                rules.allow_all = True
            return rules
        rules.parse(body.decode("utf-8", errors="replace").splitlines())
        return rules


#: trafilatura's settings for a page's main text, chosen by bench/extraction.py on the saved pages
#: of tests/fixtures/pages (figures in the README, "Sources and citations").
EXTRACTION_SETTINGS: dict[str, bool] = {"include_comments": False, "include_tables": True, "favor_precision": True}


def extract_text(html: bytes | str, url: str, settings: dict[str, bool] | None = None) -> tuple[str, str]:
    """The page's title and main text. When the main-text extraction finds next to nothing (a
    thread of posts whose boxes are called "comment", say), trafilatura's plainer baseline is
    tried before the page is given up."""
    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, **(EXTRACTION_SETTINGS if settings is None else settings)
    )
    text = (getattr(document, "text", None) or "").strip() if document is not None else ""
    title = (getattr(document, "title", None) or "").strip() if document is not None else ""
    if len(text.split()) < MIN_ARTICLE_WORDS:
        _, plainer, _ = trafilatura.baseline(html)
        if len(plainer.split()) > len(text.split()):
            text = plainer.strip()
        if not title:
            title = (trafilatura.extract_metadata(html, default_url=url).title or "").strip()
    return title, text


# What holds other articles' teasers and the site's chrome, whose dates are not the page's.
_NOT_THE_ARTICLE = XPath(
    "//aside | //nav | //footer"
    " | //*[re:test(@class, 'related|teaser|recommend|more-stories|sidebar|popular', 'i')]"
    " | //*[re:test(@id, 'related|teaser|recommend|more-stories|sidebar|popular', 'i')]",
    namespaces={"re": "http://exslt.org/regular-expressions"},
)


def published_date(html: bytes | str, url: str) -> str | None:
    """The date the page says it was published, as an ISO date, or None: never a guess such as
    the day it was fetched.

    htmldate (trafilatura's date library) does the reading, configured for this order: the page's
    own metadata (`article:published_time`, JSON-LD `datePublished`, `og:` and `<time
    itemprop=datePublished>`), then a date in the address it was fetched from (`/2013/06/10/`),
    then the body's text. Trafilatura's own call gives htmldate the page's canonical or `og:url`
    address instead (often without the date) and the whole page, so a related article's teaser
    could date the page; here the teasers' boxes are cut out first.
    """
    tree = load_html(html)
    if tree is None:
        return None
    for element in _NOT_THE_ARTICLE(tree):
        if element.getparent() is not None:
            element.drop_tree()
    return htmldate.find_date(tree, url=url, extensive_search=False, original_date=True, deferred_url_extractor=True)


def _last_segment(url: str) -> str:
    path = httpx2.URL(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] or httpx2.URL(url).host
