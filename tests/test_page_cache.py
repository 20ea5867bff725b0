"""The fetcher with a page cache (worker/sources/page_cache.py) against the fake web on 127.0.0.1:
conditional requests on the right hop, a 304 honoured, the same body not extracted twice, a
changed page extracted again, the guard and the size cap on every request; and the cache's table
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.search_server import ARTICLES, FakeSearchServer
from worker.sources.fetch import FetchedPage, Fetcher, FetchError, FetchRefused
from worker.sources.page_cache import CachedPage, MemoryPageCache, SqlPageCache
from worker.store import JobStore

LOOPBACK = ("127.0.0.1/32",)
ARTICLE = "/articles/acme-raises"


@pytest.fixture
def cache() -> MemoryPageCache:
    return MemoryPageCache()


@pytest.fixture
def fetcher(cache: MemoryPageCache) -> Iterator[Fetcher]:
    with Fetcher(trusted_networks=LOOPBACK, timeout=5, max_bytes=1024 * 1024, cache=cache) as fetcher:
        yield fetcher


def page_requests(web: FakeSearchServer, path: str) -> list[dict[str, str]]:
    return [r.headers for r in web.requests if r.path == path]


def test_a_page_read_again_is_asked_for_with_its_validators_and_a_304_reuses_its_extraction(
    web: FakeSearchServer, fetcher: Fetcher, cache: MemoryPageCache, extractions: list[str]
) -> None:
    url = f"{web.url}{ARTICLE}"
    first = fetcher.fetch(url)
    stored = cache.get(url)
    assert stored is not None and stored.etag and stored.last_modified and stored.page == first
    assert "if-none-match" not in page_requests(web, ARTICLE)[0]

    again = fetcher.fetch(url)

    assert again == first and extractions == [url]
    headers = page_requests(web, ARTICLE)[1]
    assert headers["if-none-match"] == stored.etag and headers["if-modified-since"] == stored.last_modified
    assert web.not_modified == [ARTICLE]
    assert cache.get(url).fetched_at > stored.fetched_at


def test_if_modified_since_alone_is_honoured(
    web: FakeSearchServer, fetcher: Fetcher, cache: MemoryPageCache, extractions: list[str]
) -> None:
    url = f"{web.url}{ARTICLE}"
    first = fetcher.fetch(url)
    entry = cache.get(url)
    cache.put(url, CachedPage(entry.page, entry.content_hash, etag=None, last_modified=entry.last_modified))
    assert fetcher.fetch(url) == first
    assert "if-none-match" not in page_requests(web, ARTICLE)[1] and web.not_modified == [ARTICLE]
    assert extractions == [url]


def test_the_same_body_without_validators_is_not_extracted_again_and_a_changed_one_is(
    web: FakeSearchServer, fetcher: Fetcher, extractions: list[str]
) -> None:
    web.validators = False
    url = f"{web.url}{ARTICLE}"
    first = fetcher.fetch(url)
    assert fetcher.fetch(url) == first and extractions == [url]
    title, published, paragraphs = ARTICLES[ARTICLE]
    web.set_article(ARTICLE, title, published, ["Acme Robotics raised $30 million in a Series B.", *paragraphs])
    changed = fetcher.fetch(url)
    assert "Series B" in changed.text and extractions == [url, url]


def test_a_changed_page_answers_200_and_is_extracted_again(
    web: FakeSearchServer, fetcher: Fetcher, cache: MemoryPageCache, extractions: list[str]
) -> None:
    url = f"{web.url}{ARTICLE}"
    fetcher.fetch(url)
    old_etag = cache.get(url).etag
    title, published, paragraphs = ARTICLES[ARTICLE]
    web.set_article(ARTICLE, title, published, ["Acme Robotics raised $30 million in a Series B.", *paragraphs])
    changed = fetcher.fetch(url)
    assert "Series B" in changed.text and extractions == [url, url] and web.not_modified == []
    assert cache.get(url).etag != old_etag and cache.get(url).page == changed


def test_after_a_redirect_the_validators_go_to_the_page_they_belong_to(
    web: FakeSearchServer, fetcher: Fetcher, extractions: list[str]
) -> None:
    url = f"{web.url}/redirect/article"
    first = fetcher.fetch(url)
    assert fetcher.fetch(url) == first and extractions == [f"{web.url}{ARTICLE}"]
    assert all("if-none-match" not in headers for headers in page_requests(web, "/redirect/article"))
    assert "if-none-match" in page_requests(web, ARTICLE)[1] and web.not_modified == [ARTICLE]


def test_a_cached_page_is_still_refused_by_the_guard_and_the_size_cap(web: FakeSearchServer) -> None:
    cache = MemoryPageCache()
    page = FetchedPage(f"{web.url}/big", f"{web.url}/big", "Big", "cached text " * 30)
    cache.put(page.url, CachedPage(page, "0" * 64, etag='"x"'))
    with Fetcher(trusted_networks=LOOPBACK, max_bytes=64 * 1024, cache=cache) as fetcher:
        with pytest.raises(FetchError, match="larger than"):
            fetcher.fetch(page.url)
    private = FetchedPage("http://10.0.0.1/a", "http://10.0.0.1/a", "Private", "cached text " * 30)
    cache.put(private.url, CachedPage(private, "0" * 64, etag='"x"'))
    with Fetcher(cache=cache) as guarded, pytest.raises(FetchRefused, match="not a public address"):
        guarded.fetch(private.url)


def test_the_cache_table_keeps_a_page_by_its_address(database_url: str) -> None:
    store = JobStore(database_url)
    try:
        cache = SqlPageCache(store.engine)
        url = "https://example.com/news?id=1"
        page = FetchedPage(url, "https://example.com/news/1", "Title", "Some text\x00 with a NUL", "2024-01-02")
        assert cache.get(url) is None
        cache.put(url, CachedPage(page, "a" * 64, etag='W/"1"', last_modified="Mon, 01 Jul 2024 00:00:00 GMT"))
        cache.put(url, CachedPage(page, "b" * 64, etag='W/"2"' + "x" * 600))  # an ETag too long to keep
        entry = cache.get(url)
        assert entry.page == page and entry.content_hash == "b" * 64
        assert entry.etag is None and entry.fetched_at is not None
        assert cache.get("https://example.com/news?id=2") is None
    finally:
        store.dispose()
