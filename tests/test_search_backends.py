"""Search backends against a real HTTP server speaking Tavily's, Brave's and SearXNG's wire formats,
and the choice of backend from the settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from config import PROJECT_ROOT
from tests.conftest import make_settings
from tests.fakes.search_server import BRAVE_KEY, TAVILY_KEY, TODAY, FakeSearchServer, Hit, Script, days_ago
from worker.sources import SearchConfigError, SearchError, SearchResult, build_search_backend
from worker.sources.base import SearchBackend
from worker.sources.brave import BraveSearch
from worker.sources.dates import parse_date
from worker.sources.searxng import SearXNGSearch
from worker.sources.tavily import TavilySearch

HITS = tuple(
    Hit(f"Acme result {n}", f"https://news.example/acme-{n}", f"Snippet {n} about Acme.", f"2024-0{n}-01")
    for n in range(1, 9)
)


def tavily(server: FakeSearchServer, **options: object) -> SearchBackend:
    return TavilySearch(api_key=TAVILY_KEY, base_url=server.url, **options)  # type: ignore[arg-type]


def brave(server: FakeSearchServer, **options: object) -> SearchBackend:
    return BraveSearch(api_key=BRAVE_KEY, base_url=server.url, **options)  # type: ignore[arg-type]


def searxng(server: FakeSearchServer, **options: object) -> SearchBackend:
    return SearXNGSearch(base_url=server.url, **options)  # type: ignore[arg-type]


BACKENDS = {"tavily": tavily, "brave": brave, "searxng": searxng}
Factory = Callable[..., SearchBackend]


@pytest.fixture(params=list(BACKENDS))
def make_backend(request: pytest.FixtureRequest) -> Factory:
    return BACKENDS[request.param]


def test_results_come_back_in_order_with_their_fields(web: FakeSearchServer, make_backend: Factory) -> None:
    web.script("acme robotics", Script(hits=HITS))
    results = make_backend(web).search("acme robotics", max_results=3)
    assert [result.url for result in results] == [hit.url for hit in HITS[:3]]
    first = results[0]
    assert first.title == "Acme result 1"
    assert first.snippet == "Snippet 1 about Acme."  # Brave's <strong> highlighting removed
    assert first.published is not None and first.published.startswith("2024-01-01")


def test_an_empty_result_set_is_an_empty_list(web: FakeSearchServer, make_backend: Factory) -> None:
    web.script("nothing at all", Script())
    assert make_backend(web).search("nothing at all", max_results=5) == []


def test_each_backend_sends_its_own_request_shape(web: FakeSearchServer) -> None:
    tavily(web).search("acme", max_results=4)
    brave(web).search("acme", max_results=4)
    searxng(web).search("acme", max_results=4)
    to_tavily, to_brave, to_searxng = web.requests
    assert (to_tavily.method, to_tavily.path) == ("POST", "/search")
    assert to_tavily.headers["authorization"] == f"Bearer {TAVILY_KEY}"
    assert to_tavily.body["query"] == "acme" and to_tavily.body["max_results"] == 4
    assert (to_brave.method, to_brave.path) == ("GET", "/res/v1/web/search")
    assert to_brave.headers["x-subscription-token"] == BRAVE_KEY
    assert to_brave.query == {"q": ["acme"], "count": ["4"]}
    assert (to_searxng.method, to_searxng.path) == ("GET", "/search")
    assert to_searxng.query == {"q": ["acme"], "format": ["json"]}


def test_each_backend_sends_its_own_news_parameters(web: FakeSearchServer) -> None:
    for backend in (tavily(web), brave(web), searxng(web)):
        backend.news("acme", max_results=4, days=365)
    to_tavily, to_brave, to_searxng = web.requests
    assert (to_tavily.method, to_tavily.path) == ("POST", "/search")
    assert (to_tavily.body["query"], to_tavily.body["topic"], to_tavily.body["days"]) == ("acme", "news", 365)
    assert to_tavily.body["max_results"] == 4
    assert (to_brave.method, to_brave.path) == ("GET", "/res/v1/news/search")
    assert to_brave.headers["x-subscription-token"] == BRAVE_KEY
    assert to_brave.query == {"q": ["acme"], "count": ["4"], "freshness": ["py"]}
    assert (to_searxng.method, to_searxng.path) == ("GET", "/search")
    assert to_searxng.query == {"q": ["acme"], "format": ["json"], "categories": ["news"], "time_range": ["year"]}
    assert web.news_requests() == web.requests


@pytest.mark.parametrize(
    ("days", "freshness", "time_range"),
    [
        (1, "pd", ["day"]),
        (7, "pw", ["month"]),
        (30, "pm", ["month"]),
        (400, f"{days_ago(400)}to{TODAY.isoformat()}", None),  # past both APIs' named windows
    ],
    ids=["a-day", "a-week", "a-month", "over-a-year"],
)
def test_the_news_window_is_each_api_s_nearest_that_covers_it(
    web: FakeSearchServer, days: int, freshness: str, time_range: list[str] | None
) -> None:
    for backend in (tavily(web), brave(web), searxng(web)):
        backend.news("acme", max_results=4, days=days)
    to_tavily, to_brave, to_searxng = web.requests
    assert to_tavily.body["days"] == days
    assert to_brave.query["freshness"] == [freshness]
    assert to_searxng.query.get("time_range") == time_range


def test_news_results_carry_their_dates_as_iso_dates(web: FakeSearchServer, make_backend: Factory) -> None:
    """Each API writes dates its own way (Tavily: "Mon, 01 Jan 2024 00:00:00 GMT"; Brave and
    SearXNG: ISO timestamps): each result says "2024-01-01"."""
    web.script_news("acme", Script(hits=HITS))
    results = make_backend(web).news("acme", max_results=3, days=365)
    assert [(result.url, result.published) for result in results] == [(hit.url, hit.published) for hit in HITS[:3]]


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (400, False)])
def test_a_failed_news_search_is_a_search_error(
    web: FakeSearchServer, make_backend: Factory, status: int, retryable: bool
) -> None:
    web.script_news("acme", Script(status=status))
    with pytest.raises(SearchError) as caught:
        make_backend(web).news("acme", max_results=3, days=365)
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05T23:30:00-05:00", "2024-03-05"),  # the page's own day, whatever its zone
        ("2024-03-05T10:00:00Z", "2024-03-05"),
        ("Tue, 05 Mar 2024 15:01:15 GMT", "2024-03-05"),
        ("March 5, 2024", "2024-03-05"),
        ("3 days ago", None),  # relative to a day nobody recorded
        ("2024-13-45", None),
        ("", None),
    ],
)
def test_dates_are_read_in_the_formats_the_apis_and_pages_use(text: str, expected: str | None) -> None:
    parsed = parse_date(text)
    assert (parsed.isoformat() if parsed else None) == expected


def test_searxng_is_cut_to_max_results_although_it_has_no_such_parameter(web: FakeSearchServer) -> None:
    web.script("many", Script(hits=HITS))
    assert len(searxng(web).search("many", max_results=2)) == 2


@pytest.mark.parametrize(("status", "retryable", "words"), [(500, True, "server error"), (429, True, "rate")])
def test_server_trouble_is_a_retryable_search_error(
    web: FakeSearchServer, make_backend: Factory, status: int, retryable: bool, words: str
) -> None:
    web.script("acme", Script(status=status))
    with pytest.raises(SearchError, match=words) as caught:
        make_backend(web).search("acme", max_results=3)
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(("factory", "variable"), [(TavilySearch, "TAVILY_API_KEY"), (BraveSearch, "BRAVE_API_KEY")])
def test_a_wrong_key_names_the_variable_to_fix(web: FakeSearchServer, factory: type, variable: str) -> None:
    with pytest.raises(SearchError, match=variable) as caught:
        factory(api_key="wrong-key", base_url=web.url).search("acme", max_results=3)
    assert caught.value.retryable is False
    assert "wrong-key" not in str(caught.value)


def test_an_error_that_echoes_the_key_never_shows_it(web: FakeSearchServer) -> None:
    web.script("acme", Script(status=400, echo_key=True))
    for backend, key in ((tavily(web), TAVILY_KEY), (brave(web), BRAVE_KEY)):
        with pytest.raises(SearchError, match="Request failed") as caught:
            backend.search("acme", max_results=3)
        assert key not in str(caught.value)
        assert caught.value.retryable is False


def test_a_malformed_body_is_a_search_error(web: FakeSearchServer, make_backend: Factory) -> None:
    web.script("acme", Script(malformed=True))
    with pytest.raises(SearchError, match="malformed"):
        make_backend(web).search("acme", max_results=3)


def test_a_slow_api_times_out(web: FakeSearchServer, make_backend: Factory) -> None:
    web.script("acme", Script(hits=HITS, delay=1.5))
    started = time.monotonic()
    with pytest.raises(SearchError, match="did not answer within 0.3 s") as caught:
        make_backend(web, timeout=0.3).search("acme", max_results=3)
    assert time.monotonic() - started < 1.2
    assert caught.value.retryable is True


def test_an_unreachable_api_is_a_retryable_search_error(make_backend: Factory) -> None:
    closed_port = SimpleNamespace(url="http://127.0.0.1:1")
    with pytest.raises(SearchError, match="could not be reached") as caught:
        make_backend(closed_port, timeout=2).search("acme", max_results=3)
    assert caught.value.retryable is True


def test_searxng_without_the_json_format_says_how_to_enable_it(web: FakeSearchServer) -> None:
    web.script("acme", Script(status=403))
    with pytest.raises(SearchError, match="settings.yml"):
        searxng(web).search("acme", max_results=3)


def test_a_wrong_address_is_reported_as_such(web: FakeSearchServer) -> None:
    with pytest.raises(SearchError, match="no search endpoint"):
        SearXNGSearch(base_url=f"{web.url}/not-searxng").search("acme", max_results=3)


# Choosing a backend.


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ({"tavily_api_key": "t", "brave_api_key": "b", "searxng_url": "http://127.0.0.1:8888"}, TavilySearch),
        ({"brave_api_key": "b", "searxng_url": "http://127.0.0.1:8888"}, BraveSearch),
        ({"searxng_url": "http://127.0.0.1:8888"}, SearXNGSearch),
    ],
)
def test_auto_takes_the_first_configured_backend(configured: dict, expected: type) -> None:
    assert isinstance(build_search_backend(make_settings(**configured)), expected)


def test_auto_without_any_backend_means_no_web_search() -> None:
    assert build_search_backend(make_settings()) is None


def test_none_turns_web_search_off_even_with_keys() -> None:
    assert build_search_backend(make_settings(search_backend="none", tavily_api_key="t")) is None


def test_an_explicit_backend_gets_its_settings() -> None:
    backend = build_search_backend(
        make_settings(search_backend="brave", brave_api_key="b", brave_base_url="http://127.0.0.1:9/", fetch_timeout=3)
    )
    assert isinstance(backend, BraveSearch)
    assert (backend.api_key, backend.base_url, backend.timeout) == ("b", "http://127.0.0.1:9", 3)


@pytest.mark.parametrize(
    ("backend", "variable"), [("tavily", "TAVILY_API_KEY"), ("brave", "BRAVE_API_KEY"), ("searxng", "SEARXNG_URL")]
)
def test_an_explicit_backend_without_its_settings_is_a_config_error(backend: str, variable: str) -> None:
    # Another backend being configured does not make up for the one asked for.
    others = {"tavily_api_key": "t", "brave_api_key": "b", "searxng_url": "http://127.0.0.1:8888"}
    del others[variable.lower()]
    with pytest.raises(SearchConfigError, match=variable):
        build_search_backend(make_settings(search_backend=backend, **others))


def test_an_unknown_backend_is_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError, match="search_backend"):
        make_settings(search_backend="google")


def test_search_keys_print_masked(tmp_path: Path) -> None:
    settings = make_settings(tavily_api_key="tvly-very-secret", brave_api_key="brave-very-secret")
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings.tavily_api_key)
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path),
        "STARTUP_REPORTS_ENV_FILE": os.devnull,
        "TAVILY_API_KEY": "tvly-very-secret",
        "BRAVE_API_KEY": "brave-very-secret",
    }
    out = subprocess.run(
        [sys.executable, "-m", "config", "TAVILY_API_KEY", "BRAVE_API_KEY", "SEARCH_BACKEND"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == ["**********", "**********", "auto", ""]


def test_search_results_are_plain_values() -> None:
    result = SearchResult(title="t", url="https://a.example", snippet="s")
    assert result.published is None
    with pytest.raises(AttributeError):
        result.title = "changed"  # type: ignore[misc]
