"""A fake web for the sources tests: one real HTTP server on 127.0.0.1 that answers as Tavily, Brave
Search and SearXNG do, and serves the pages their results point at.

Search APIs (each checks its key the way the real one does, and answers in its wire format):

- Tavily: `POST /search`, `Authorization: Bearer <key>`, answers `{"query", "results": [...]}`.
- Brave: `GET /res/v1/web/search?q=&count=`, `X-Subscription-Token`, answers `{"web": {"results"}}`.
- SearXNG: `GET /search?q=&format=json`, answers `{"results": [...]}` (403 without format=json).

News, with dates (each API's own date format) and each API's own window parameters, checked as
the API documents them (a value it does not know is a 400 or 422) but not applied: SearXNG's
engines may ignore the window too, so the pipeline checks the dates itself.

- Tavily: the same `POST /search` with `"topic": "news"` and `"days"`; `published_date` in RFC 2822.
- Brave: `GET /res/v1/news/search?q=&count=&freshness=` (`pd`, `pw`, `pm`, `py` or
  `YYYY-MM-DDtoYYYY-MM-DD`), answers `{"type": "news", "results": [...]}` with `page_age` and `age`.
- SearXNG: `GET /search?q=&format=json&categories=news&time_range=` (`day`, `month`, `year`).

Results are scripted per query (`script`, and `script_news` for news searches): hits, an empty
list, an error status, a malformed body or a delay. An unscripted query finds the fake's own
article pages, so a fetch can follow it; an unscripted news query finds the fake's news
(`default_news`), dated relative to today: two within the last year, one older, one undated, in
no particular order.

Pages: articles with a title and a date (with an ETag and a Last-Modified, answering 304 to a
request whose If-None-Match or If-Modified-Since says the reader has them; `set_article` changes
one, `validators = False` leaves the headers out), robots.txt (disallowing /private/, or answering a status
`set_robots` gives), redirects (to 169.254.169.254, to another loopback address, in a loop, to
ftp), bodies that are too large (with and without Content-Length), an image, JSON, plain text,
a PDF, a page without a Content-Type, a slow page, a page of navigation and boilerplate only, the
saved pages of tests/fixtures/pages under /saved/, and error statuses. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.pdf_builder import minimal_pdf

TAVILY_KEY = "tvly-test-key-0123456789"
BRAVE_KEY = "brave-test-key-0123456789"
BIG_BODY_BYTES = 3 * 1024 * 1024
PDF_SENTENCE = "Acme Robotics signed a pilot with Northwind Logistics in May 2024."
#: Notes with what LaTeX PDFs put in their text: NUL bytes, a control character, ligature glyphs.
LATEX_NOTES = (
    "Acme Robotics\x00 builds warehouse robots for mid-sized retailers. Its \ufb01rst \ufb02eet went to "
    "Northwind Logistics in 2024,\x07 and the o\ufb03ce in Lyon now employs twelve engineers who "
    "maintain the navigation so\ufb00ware.\n"
)
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n\nUser-agent: BlockedBot\nDisallow: /\n"
TODAY = datetime.now(UTC).date()
#: Saved pages (tests/fixtures/pages/NAME.html), served at any path under /saved/ that ends in NAME,
#: so that a test can give one a dated address (/saved/2013/06/10/NAME).
SAVED_PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "pages"


def days_ago(days: int) -> str:
    """The ISO date `days` before today, so that dated fixtures stay as old as the tests mean."""
    return (TODAY - timedelta(days=days)).isoformat()


#: A page whose own metadata dates it two years back: older than SOURCE_MAX_AGE_DAYS's default.
OLD_ARTICLE = "/articles/acme-founding"
TAVILY_FIELDS = {
    "query",
    "max_results",
    "search_depth",
    "topic",
    "days",
    "include_answer",
    "include_raw_content",
    "include_images",
}
BRAVE_FRESHNESS = re.compile(r"p[dwmy]|\d{4}-\d{2}-\d{2}to\d{4}-\d{2}-\d{2}")
SEARXNG_TIME_RANGES = {"day", "month", "year"}
#: When the fake's pages last changed, unless a test changed one (`set_article`).
PAGES_MODIFIED = datetime(2024, 7, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Hit:
    title: str
    url: str
    snippet: str
    published: str | None = None


@dataclass(frozen=True)
class Script:
    """What the search APIs answer to one query."""

    hits: tuple[Hit, ...] = ()
    status: int = 200
    malformed: bool = False
    delay: float = 0.0
    #: Put the key the request carried into the error text, as a careless API might.
    echo_key: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None


ARTICLES = {
    "/articles/acme-raises": (
        "Acme Robotics raises $12M Series A",
        "2024-03-05",
        [
            "Acme Robotics, the warehouse automation startup founded in 2021, has raised a $12 million "
            "Series A round led by Example Ventures, the company said on Tuesday.",
            "The company sells autonomous picking arms to mid-sized logistics operators and says its "
            "annual recurring revenue tripled in the last twelve months to about $4 million.",
            "Chief executive Jane Doe said the money would pay for a second factory line and for a sales "
            "team in Europe, where the company already has three pilot customers.",
        ],
    ),
    "/articles/acme-team": (
        "Inside Acme Robotics' engineering team",
        "2023-11-20",
        [
            "Acme Robotics employs 45 people, two thirds of them engineers, at its headquarters in Austin. "
            "The founders previously worked on industrial robot arms at a large manufacturer.",
            "The team ships software updates to its fleet every two weeks and reports a mean time between "
            "failures of more than 800 hours for its latest gripper design.",
        ],
    ),
    "/articles/undated": (
        "Warehouse robotics market overview",
        None,
        [
            "The market for warehouse robotics keeps growing as labour costs rise and e-commerce volumes "
            "increase. Analysts expect dozens of new entrants over the next five years.",
            "Picking remains the hardest task to automate, which is why startups focus on grippers, vision "
            "systems and the software that plans each grasp in milliseconds.",
        ],
    ),
    # Two companies called Acme Robotics, each on its own domain (tests resolve the domains to the
    # fake), and a review that names only the second one's domain.
    "/companies/warehouse": (
        "Acme Robotics | Warehouse picking robots",
        "2024-06-01",
        [
            "Acme Robotics builds autonomous picking arms for warehouses and logistics operators. "
            "Find us at acmerobotics.com or at our Austin headquarters, where forty engineers design "
            "the grippers, the vision system and the software that plans each grasp.",
        ],
    ),
    "/companies/cleaning": (
        "Acme Robotics: home cleaning robots",
        "2024-06-02",
        [
            "Acme Robotics makes robot vacuums and window cleaners for small flats, sold online at "
            "acme-robotics.io in twelve European countries, with a two-year warranty and spare "
            "brushes delivered every three months.",
        ],
    ),
    "/articles/vacuum-review": (
        "Review: the Acme Robotics vacuum",
        "2024-07-01",
        [
            "We tested the robot vacuum from Acme Robotics (acme-robotics.io) for a month in a small flat. "
            "It cleaned well but got stuck under the sofa twice a week.",
        ],
    ),
    OLD_ARTICLE: (
        "How Acme Robotics was founded",
        days_ago(730),
        [
            "Acme Robotics was founded by two engineers who had built robot arms for car factories and "
            "wanted to bring the same precision to warehouse picking.",
            "The founders financed the first prototype themselves and hired their first ten engineers "
            "from the university lab where they had met.",
        ],
    ),
    "/private/secret": (
        "Internal only",
        "2024-01-01",
        ["This page is disallowed by robots.txt, and a polite fetcher never reads it. " * 3],
    ),
}


#: The fake's news pages, path: (title, date, text). Listed in no particular order of date.
NEWS = {
    "/news/acme-cfo": ("Acme Robotics hires a chief financial officer", days_ago(95), "Acme named a CFO."),
    "/news/acme-europe": ("Acme Robotics opens a European office", days_ago(20), "Acme opened in Rotterdam."),
    "/news/acme-trade-show": ("Acme Robotics shows its first arm", days_ago(500), "Acme showed a prototype."),
    "/news/acme-undated": ("Acme Robotics in the press", None, "An undated press mention."),
    "/news/acme-award": ("Acme Robotics wins a logistics award", days_ago(200), "Acme won an award."),
}

# A page with no article: its title, navigation, a cookie notice and a footer (what trafilatura
# keeps of it is those few words).
BOILERPLATE_HTML = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Acme Robotics | Careers</title></head>"
    b"<body><nav><a href='/'>Home</a> | <a href='/about'>About</a> | <a href='/jobs'>Jobs</a></nav>"
    b"<article><h1>Acme Robotics | Careers</h1></article><div>We use cookies. Accept all.</div>"
    b"<footer>Copyright Acme Robotics 2024. All rights reserved.</footer></body></html>"
)


def article_html(title: str, published: str | None, paragraphs: list[str]) -> bytes:
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    body = "".join(f"<p>{text}</p>" for text in paragraphs)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{meta}</head>"
        f"<body><nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>Copyright Example News. All rights reserved.</footer></body></html>"
    ).encode()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeSearchServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, Script] = {}
        self._news_scripts: dict[str, Script] = {}
        self.requests: list[Recorded] = []
        self.robots_status = 200
        self.robots_body = ROBOTS_TXT
        self.big_body_bytes = BIG_BODY_BYTES
        #: Articles a test changed (path: title, date, paragraphs, when), served instead of ARTICLES'.
        self.changed: dict[str, tuple[str, str | None, list[str], datetime]] = {}
        #: Whether pages carry an ETag and a Last-Modified (and so may answer 304).
        self.validators = True
        #: The paths answered 304 Not Modified.
        self.not_modified: list[str] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # Control, from the test.

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeSearchServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._news_scripts.clear()
            self.requests.clear()
            self.robots_status = 200
            self.robots_body = ROBOTS_TXT
            self.big_body_bytes = BIG_BODY_BYTES
            self.changed.clear()
            self.validators = True
            self.not_modified.clear()

    def set_article(self, path: str, title: str, published: str | None, paragraphs: list[str]) -> None:
        """Change (or add) the article at `path`: a new body, a new ETag, Last-Modified now."""
        with self._lock:
            self.changed[path] = (title, published, paragraphs, datetime.now(UTC))

    def script(self, query: str, script: Script) -> None:
        with self._lock:
            self._scripts[query] = script

    def script_news(self, query: str, script: Script) -> None:
        with self._lock:
            self._news_scripts[query] = script

    def set_robots(self, *, status: int = 200, body: str = ROBOTS_TXT) -> None:
        with self._lock:
            self.robots_status, self.robots_body = status, body

    def default_hits(self) -> tuple[Hit, ...]:
        """What an unscripted query finds: the fake's own articles."""
        return tuple(
            Hit(title, f"{self.url}{path}", paragraphs[0][:160], published)
            for path, (title, published, paragraphs) in ARTICLES.items()
            if not path.startswith("/private/")
        )

    def default_news(self) -> tuple[Hit, ...]:
        """What an unscripted news query finds: the fake's news, some older than a year, one undated."""
        return tuple(Hit(title, f"{self.url}{path}", text, day) for path, (title, day, text) in NEWS.items())

    def news_requests(self) -> list[Recorded]:
        """The news searches received, whichever API they went to."""
        return [r for r in self.requests if is_news(r)]

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    # Serving.

    def _script_for(self, query: str, *, news: bool = False) -> Script:
        with self._lock:
            if news:
                return self._news_scripts.get(query) or Script(hits=self.default_news())
            return self._scripts.get(query) or Script(hits=self.default_hits())

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _begin(self, body: Any = None) -> tuple[str, dict[str, list[str]]]:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                headers = {key.lower(): value for key, value in self.headers.items()}
                server._record(Recorded(self.command, parts.path, query, headers, body))
                return parts.path, query

            def do_POST(self) -> None:  # noqa: N802 (the name http.server asks for)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                path, _ = self._begin(body)
                if path != "/search" or not isinstance(body, dict):
                    self._json(404, {"detail": {"error": "Not found"}})
                    return
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {TAVILY_KEY}":
                    self._json(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
                    return
                problem = tavily_problem(body)
                if problem:
                    self._json(400, {"detail": {"error": problem}})
                    return
                query = str(body.get("query", ""))
                news = body.get("topic") == "news"
                script = server._script_for(query, news=news)
                if self._scripted_failure(script, auth, lambda message: {"detail": {"error": message}}):
                    return
                # Tavily documents dates on news results only; the fake dates any hit it can, as RFC 2822 text.
                results = [
                    {"title": hit.title, "url": hit.url, "content": hit.snippet, "score": 0.9 - index / 100}
                    | ({"published_date": rfc2822(hit.published)} if hit.published else {})
                    for index, hit in enumerate(script.hits[: int(body.get("max_results", 5))])
                ]
                self._json(200, {"query": query, "results": results, "response_time": 0.01, "images": []})

            def do_GET(self) -> None:  # noqa: N802
                path, query = self._begin()
                if path in ("/res/v1/web/search", "/res/v1/news/search"):
                    self._brave(query, news=path.endswith("/news/search"))
                elif path == "/search":
                    self._searxng(query)
                else:
                    self._page(path)

            # The search APIs.

            def _brave(self, query: dict[str, list[str]], *, news: bool) -> None:
                token = self.headers.get("X-Subscription-Token", "")
                if token != BRAVE_KEY:
                    self._json(
                        401,
                        {
                            "type": "ErrorResponse",
                            "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "detail": "Invalid token", "status": 401},
                        },
                    )
                    return
                allowed = {"q", "count", "freshness"} if news else {"q", "count"}
                freshness = query.get("freshness", [""])[0]
                if set(query) - allowed or (news and freshness and not BRAVE_FRESHNESS.fullmatch(freshness)):
                    detail = f"Unknown or invalid parameters: {sorted(query)}"
                    self._json(422, {"type": "ErrorResponse", "error": {"detail": detail, "status": 422}})
                    return
                q = query.get("q", [""])[0]
                script = server._script_for(q, news=news)
                if self._scripted_failure(
                    script, token, lambda message: {"type": "ErrorResponse", "error": {"detail": message}}
                ):
                    return
                count = int(query.get("count", ["20"])[0])
                results = [
                    {
                        "title": hit.title,
                        "url": hit.url,
                        # Brave highlights the query's words.
                        "description": hit.snippet.replace("Acme", "<strong>Acme</strong>", 1),
                        "type": "search_result",
                    }
                    | ({"page_age": f"{hit.published}T00:00:00", "age": hit.published} if hit.published else {})
                    for hit in script.hits[:count]
                ]
                if news:
                    self._json(200, {"type": "news", "query": {"original": q}, "results": results})
                    return
                # Brave leaves `web` out of an answer with no web results.
                payload: dict[str, Any] = {"type": "search", "query": {"original": q}}
                if results:
                    payload["web"] = {"type": "search", "results": results}
                self._json(200, payload)

            def _searxng(self, query: dict[str, list[str]]) -> None:
                if query.get("format", [""])[0] != "json":
                    self._send(403, b"<html><body>403 Forbidden</body></html>", "text/html")
                    return
                categories, time_range = query.get("categories", [""])[0], query.get("time_range", [""])[0]
                if time_range and time_range not in SEARXNG_TIME_RANGES:
                    self._json(400, {"error": f"invalid time_range {time_range!r}"})
                    return
                q = query.get("q", [""])[0]
                script = server._script_for(q, news=categories == "news")
                if self._scripted_failure(script, "", lambda message: {"error": message}):
                    return
                results = [
                    {
                        "title": hit.title,
                        "url": hit.url,
                        "content": hit.snippet,
                        "engine": "fake",
                        "publishedDate": f"{hit.published}T00:00:00" if hit.published else None,
                    }
                    for hit in script.hits
                ]
                self._json(200, {"query": q, "number_of_results": len(results), "results": results})

            def _scripted_failure(self, script: Script, key: str, shape: Any) -> bool:
                if script.delay:
                    time.sleep(script.delay)
                if script.malformed:
                    self._send(200, b'{"results": [', "application/json")
                    return True
                if script.status != 200:
                    message = f"Request failed (you sent {key})" if script.echo_key else "Request failed"
                    self._json(script.status, shape(message))
                    return True
                return False

            # The pages.

            def _page(self, path: str) -> None:
                if path == "/robots.txt":
                    with server._lock:
                        status, body = server.robots_status, server.robots_body
                    self._send(status, body.encode() if status == 200 else b"no robots here", "text/plain")
                elif path in server.changed:
                    title, published, paragraphs, modified = server.changed[path]
                    self._article(path, article_html(title, published, paragraphs), modified)
                elif path in ARTICLES:
                    self._article(path, article_html(*ARTICLES[path]), PAGES_MODIFIED)
                elif path in NEWS:
                    title, published, text = NEWS[path]
                    self._article(path, article_html(title, published, [text * 5]), PAGES_MODIFIED)
                elif path == "/redirect/article":
                    self._redirect(301, "/articles/acme-raises")
                elif path == "/redirect/private-path":
                    self._redirect(302, "/private/secret")
                elif path == "/redirect/metadata":
                    self._redirect(302, "http://169.254.169.254/latest/meta-data/")
                elif path == "/redirect/loopback":
                    self._redirect(302, f"http://127.0.0.2:{server.port}/articles/acme-raises")
                elif path == "/redirect/loop":
                    self._redirect(302, "/redirect/loop")
                elif path == "/redirect/ftp":
                    self._redirect(302, "ftp://127.0.0.1/file.txt")
                elif path == "/big":
                    self._send(200, self._big_body(), "text/html")
                elif path == "/big-chunked":
                    self._chunked(self._big_body(), "text/html")
                elif path == "/image.png":
                    self._send(200, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")
                elif path == "/data.json":
                    self._json(200, {"not": "a page"})
                elif path == "/notes.txt":
                    self._send(200, b"Plain notes about Acme Robotics: churn is 2% a month.\n", "text/plain")
                elif path == "/latex-notes.txt":  # as text copied out of a LaTeX PDF comes
                    self._send(200, LATEX_NOTES.encode(), "text/plain")
                elif path == "/deck.pdf":
                    self._send(200, minimal_pdf([[PDF_SENTENCE]], title="Acme deck"), "application/pdf")
                elif path == "/no-type":
                    self._send(200, article_html(*ARTICLES["/articles/acme-team"]), "")
                elif path == "/empty":
                    self._send(200, b"<html><head><title>Nothing</title></head><body></body></html>", "text/html")
                elif path == "/boilerplate":
                    self._send(200, BOILERPLATE_HTML, "text/html; charset=utf-8")
                elif path == "/slow":
                    time.sleep(2)
                    self._send(200, article_html(*ARTICLES["/articles/undated"]), "text/html")
                elif path.startswith("/saved/") and (SAVED_PAGES / f"{path.rsplit('/', 1)[1]}.html").is_file():
                    self._send(200, (SAVED_PAGES / f"{path.rsplit('/', 1)[1]}.html").read_bytes(), "text/html")
                elif path.startswith("/status/"):
                    self._send(int(path.rsplit("/", 1)[1]), b"error page", "text/html")
                else:
                    self._send(404, b"<html><body>Not found</body></html>", "text/html")

            def _article(self, path: str, body: bytes, modified: datetime) -> None:
                """An article with its validators, or 304 when the request's say the reader has it
                (If-None-Match first, as RFC 9110 orders them)."""
                if not server.validators:
                    self._send(200, body, "text/html; charset=utf-8")
                    return
                etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
                last_modified = format_datetime(modified.replace(microsecond=0), usegmt=True)
                headers = {"ETag": etag, "Last-Modified": last_modified}
                if_none_match = self.headers.get("If-None-Match")
                if_modified_since = self.headers.get("If-Modified-Since")
                if if_none_match is not None:
                    fresh = etag in [tag.strip() for tag in if_none_match.split(",")]
                else:
                    fresh = if_modified_since is not None and not_modified_since(if_modified_since, modified)
                if fresh:
                    with server._lock:
                        server.not_modified.append(path)
                    self._send(304, b"", "", headers)
                else:
                    self._send(200, body, "text/html; charset=utf-8", headers)

            def _big_body(self) -> bytes:
                filler = b"<p>" + b"word " * 200 + b"</p>"
                return b"<html><body>" + filler * (server.big_body_bytes // len(filler) + 1) + b"</body></html>"

            def _redirect(self, status: int, location: str) -> None:
                self._send(status, b"", "text/html", {"Location": location})

            def _json(self, status: int, payload: Any) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json")

            def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: as intended
                    self.close_connection = True

            def _chunked(self, data: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for start in range(0, len(data), 64 * 1024):
                        chunk = data[start : start + 64 * 1024]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        return Handler


def is_news(request: Recorded) -> bool:
    """Whether a recorded request was a news search, on any of the three APIs."""
    if request.path == "/res/v1/news/search":
        return True
    if request.method == "POST":
        return isinstance(request.body, dict) and request.body.get("topic") == "news"
    return request.path == "/search" and request.query.get("categories") == ["news"]


def tavily_problem(body: dict[str, Any]) -> str:
    """What Tavily would refuse in a search's body, or "": unknown fields, an unknown topic, or
    `days` that is not a positive number of days (or comes without the news topic)."""
    unknown = set(body) - TAVILY_FIELDS
    if unknown:
        return f"Unknown fields: {sorted(unknown)}"
    if body.get("topic", "general") not in ("general", "news"):
        return f"Invalid topic {body['topic']!r}"
    if "days" in body and (body.get("topic") != "news" or not isinstance(body["days"], int) or body["days"] < 1):
        return "days must be a positive integer, with topic news"
    return ""


def not_modified_since(if_modified_since: str, modified: datetime) -> bool:
    """Whether a page last modified at `modified` is unchanged since an If-Modified-Since date
    (one that cannot be read means it may have changed)."""
    try:
        return modified.replace(microsecond=0) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False


def rfc2822(published: str) -> str:
    """An ISO date as Tavily writes news dates: "Thu, 05 Dec 2024 00:00:00 GMT"."""
    return format_datetime(datetime.combine(date.fromisoformat(published), datetime.min.time(), UTC), usegmt=True)
