"""Publication dates as pages and search APIs state them, read into `date`s that can be compared.

The formats are few and documented: ISO 8601 (trafilatura, SearXNG's `publishedDate`, Brave's
`page_age`), RFC 2822 (Tavily's `published_date` on news) and "March 5, 2024" (Brave's `age` when
it has no `page_age`). The standard library reads all three, so no general-purpose date guesser
(dateparser, which would also read "3 days ago" against an unknown day) sits between a page's
claim and the report.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORDED = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y")


def parse_date(text: str | None) -> date | None:
    """The calendar date `text` states, or None when it states none we can read. A timestamp
    keeps its own day, whatever its time zone: the day the page says it was published."""
    text = (text or "").strip()
    if not text:
        return None
    if _ISO.match(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                return None
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    for pattern in _WORDED:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def normalise_date(text: str | None) -> str | None:
    """`text` as an ISO date when it can be read, else as written (an API's own wording is still
    worth showing); None when there is nothing."""
    parsed = parse_date(text)
    if parsed is not None:
        return parsed.isoformat()
    written = " ".join((text or "").split())
    return written or None
