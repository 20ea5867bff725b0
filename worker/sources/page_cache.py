"""What the fetcher remembers of the pages it read, so that reading one again is cheap.

A page is asked for again with its validators (If-None-Match with its ETag, If-Modified-Since with
its Last-Modified): a 304 answer, or a body whose hash is the one stored, means the page did not
change, and its stored extraction is used instead of extracting it again. `Fetcher` takes any
`PageCache`; the worker's is `SqlPageCache`, a table of the job database (revision 0008), so that
a re-run days later, in another worker process, finds the pages of the version before.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from worker.models import PageCacheEntry, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from worker.sources.fetch import FetchedPage

logger = logging.getLogger(__name__)

#: Validators longer than these are not kept (a server's ETag is a few dozen characters).
MAX_ETAG_CHARS = 500
MAX_LAST_MODIFIED_CHARS = 100


@dataclass(frozen=True)
class CachedPage:
    """A page as last fetched, with what a conditional request needs to ask whether it changed."""

    page: FetchedPage
    content_hash: str
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime | None = None

    def validators(self) -> dict[str, str]:
        """The headers that make a request conditional on the page having changed."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class PageCache(Protocol):
    def get(self, url: str) -> CachedPage | None: ...

    def put(self, url: str, entry: CachedPage) -> None: ...


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", errors="surrogatepass")).hexdigest()


class MemoryPageCache:
    """A page cache in a dict: for a process that reads a handful of pages once (and tests)."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedPage] = {}

    def get(self, url: str) -> CachedPage | None:
        return self.entries.get(url)

    def put(self, url: str, entry: CachedPage) -> None:
        self.entries[url] = entry


class SqlPageCache:
    """The page cache in the job database's `page_cache` table, one row per address. A cache that
    cannot be read or written (the database away) only costs a full fetch: its errors are logged,
    never raised into the fetch."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def get(self, url: str) -> CachedPage | None:
        from worker.sources.fetch import FetchedPage

        try:
            with self._sessions() as session:
                row = session.get(PageCacheEntry, url_hash(url))
        except SQLAlchemyError as exc:
            logger.warning("the page cache could not be read (%s); fetching %s in full", exc, url)
            return None
        if row is None or row.url != url:
            return None
        return CachedPage(
            page=FetchedPage(**json.loads(row.page)),
            content_hash=row.content_hash,
            etag=row.etag,
            last_modified=row.last_modified,
            fetched_at=row.fetched_at,
        )

    def put(self, url: str, entry: CachedPage) -> None:
        etag = entry.etag if entry.etag and len(entry.etag) <= MAX_ETAG_CHARS else None
        modified = entry.last_modified
        modified = modified if modified and len(modified) <= MAX_LAST_MODIFIED_CHARS else None
        row = PageCacheEntry(
            url_hash=url_hash(url),
            url=url,
            etag=etag,
            last_modified=modified,
            content_hash=entry.content_hash,
            page=json.dumps(asdict(entry.page)),
            fetched_at=entry.fetched_at or utcnow(),
        )
        try:
            with self._sessions.begin() as session:
                session.merge(row)
        except IntegrityError:
            pass  # another job stored the same page at the same moment: either row will do
        except SQLAlchemyError as exc:
            logger.warning("the page cache could not be written (%s); %s will be fetched in full next time", exc, url)
