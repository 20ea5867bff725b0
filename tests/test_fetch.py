"""The page fetcher against a real HTTP server on 127.0.0.1: extraction, the SSRF guard (addresses,
redirects, DNS pinning), robots.txt, size and type limits; and the duplicate-result filter.

Nothing here leaves 127.0.0.1: every refused address is refused before a connection is tried.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import make_settings
from tests.fakes.search_server import PDF_SENTENCE, SAVED_PAGES, FakeSearchServer
from worker.sources.base import SearchResult, canonical_url, drop_duplicates, normalise_url
from worker.sources.fetch import Fetcher, FetchError, FetchRefused
from worker.sources.ssrf import is_public_address

LOOPBACK = ("127.0.0.1/32",)


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    """A fetcher that trusts the fake's own address and nothing else that is private."""
    with Fetcher(trusted_networks=LOOPBACK, timeout=5, max_bytes=1024 * 1024) as fetcher:
        yield fetcher


# Extraction.


def test_an_article_gives_its_title_text_and_date(web: FakeSearchServer, fetcher: Fetcher) -> None:
    page = fetcher.fetch(f"{web.url}/articles/acme-raises")
    assert page.title == "Acme Robotics raises $12M Series A"
    assert "raised a $12 million Series A round led by Example Ventures" in page.text
    assert "All rights reserved" not in page.text  # the footer is boilerplate, not the article
    assert page.published == "2024-03-05"
    assert page.url == page.final_url == f"{web.url}/articles/acme-raises"


def test_a_page_without_a_date_has_none(web: FakeSearchServer, fetcher: Fetcher) -> None:
    page = fetcher.fetch(f"{web.url}/articles/undated")
    assert page.published is None
    assert "Picking remains the hardest task" in page.text


@pytest.mark.parametrize(
    ("path", "published"),
    [
        # JSON-LD dates the article; the canonical address has no date; related articles' teasers do.
        ("/saved/teaser-date", "2013-06-10"),
        ("/saved/2013/06/10/teaser-date", "2013-06-10"),
        # No metadata: the address it was read from, then the byline's text; never a teaser's date.
        ("/saved/2013/06/10/url-date", "2013-06-10"),
        ("/saved/text-date", "2013-06-10"),
        ("/saved/url-date", None),
    ],
)
def test_the_page_s_own_date_wins_over_related_articles_teasers(
    web: FakeSearchServer, fetcher: Fetcher, path: str, published: str | None
) -> None:
    page = fetcher.fetch(f"{web.url}{path}")
    assert "founded Acme Robotics in Austin" in page.text
    assert page.published == published


def test_a_page_the_main_text_extraction_finds_nothing_in_is_read_the_plainer_way(
    web: FakeSearchServer, fetcher: Fetcher
) -> None:
    """A forum thread: every post sits in a box called "comment", which trafilatura's main-text
    extraction leaves out, keeping only the heading."""
    page = fetcher.fetch(f"{web.url}/saved/forum-thread")
    assert "We rent them per pick with a monthly minimum" in page.text
    assert "More than eight hundred hours on the latest design" in page.text
    assert page.title.startswith("AMA: we are the founders of Acme Robotics")


EXPECTED = json.loads((SAVED_PAGES / "expectations.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_saved_pages_keep_their_article_and_drop_the_boilerplate(
    web: FakeSearchServer, fetcher: Fetcher, name: str
) -> None:
    """The settings bench/extraction.py chose, on pages with other posts' teasers, editors'
    recommendations, a newsletter box, a wiki's navbox and categories ("not_yet_dropped" lists
    what no trafilatura setting removes)."""
    text = fetcher.fetch(f"{web.url}/saved/{name}").text
    assert [sentence for sentence in EXPECTED[name]["keep"] if sentence not in text] == []
    assert [phrase for phrase in EXPECTED[name]["drop"] if phrase in text] == []


def test_text_is_capped_to_max_chars(web: FakeSearchServer) -> None:
    with Fetcher(trusted_networks=LOOPBACK, max_chars=120) as short:
        page = short.fetch(f"{web.url}/articles/acme-raises")
    assert len(page.text) <= 120
    assert page.text.endswith("…")


def test_plain_text_and_pdf_are_read_too(web: FakeSearchServer, fetcher: Fetcher) -> None:
    assert "churn is 2% a month" in fetcher.fetch(f"{web.url}/notes.txt").text
    assert PDF_SENTENCE in fetcher.fetch(f"{web.url}/deck.pdf").text


def test_a_page_without_a_content_type_is_judged_by_its_first_bytes(web: FakeSearchServer, fetcher: Fetcher) -> None:
    assert "employs 45 people" in fetcher.fetch(f"{web.url}/no-type").text


def test_a_page_without_text_is_a_fetch_error(web: FakeSearchServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError, match="no readable text"):
        fetcher.fetch(f"{web.url}/empty")


@pytest.mark.parametrize("status", [404, 500])
def test_an_error_status_is_a_fetch_error(web: FakeSearchServer, fetcher: Fetcher, status: int) -> None:
    with pytest.raises(FetchError, match=f"answered {status}") as caught:
        fetcher.fetch(f"{web.url}/status/{status}")
    assert caught.value.status == status
    assert not isinstance(caught.value, FetchRefused)


def test_a_slow_page_times_out(web: FakeSearchServer) -> None:
    started = time.monotonic()
    with Fetcher(trusted_networks=LOOPBACK, timeout=0.4) as impatient, pytest.raises(FetchError, match="0.4 s"):
        impatient.fetch(f"{web.url}/slow")
    assert time.monotonic() - started < 1.8


# Size and type.


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_body_past_max_bytes_is_refused(web: FakeSearchServer, fetcher: Fetcher, path: str) -> None:
    """With a Content-Length it is refused before reading; without one, as soon as the cap is passed."""
    with pytest.raises(FetchError, match="larger than 1048576 bytes"):
        fetcher.fetch(f"{web.url}{path}")


def test_a_body_under_max_bytes_is_read(web: FakeSearchServer) -> None:
    web.big_body_bytes = 200_000
    with Fetcher(trusted_networks=LOOPBACK, max_bytes=1024 * 1024) as fetcher:
        assert fetcher.fetch(f"{web.url}/big").text.startswith("word word")


@pytest.mark.parametrize(("path", "kind"), [("/image.png", "image/png"), ("/data.json", "application/json")])
def test_other_content_types_are_refused(web: FakeSearchServer, fetcher: Fetcher, path: str, kind: str) -> None:
    with pytest.raises(FetchRefused, match=kind):
        fetcher.fetch(f"{web.url}{path}")


# The SSRF guard.


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 for 169.254.169.254
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    ],
)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
)
def test_ordinary_internet_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_loopback_is_refused_unless_private_addresses_are_allowed(web: FakeSearchServer) -> None:
    with Fetcher() as guarded, pytest.raises(FetchRefused, match="127.0.0.1 is not a public address"):
        guarded.fetch(f"{web.url}/articles/acme-raises")
    assert web.requests == []  # refused before connecting, robots.txt included
    with Fetcher(allow_private=True) as open_fetcher:
        assert open_fetcher.fetch(f"{web.url}/articles/acme-raises").title.startswith("Acme Robotics")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://2130706433/",  # 127.0.0.1 spelt as a number
        "http://localhost:9/",
        "http://10.0.0.1/",
    ],
)
def test_private_hosts_are_refused_before_connecting(url: str) -> None:
    started = time.monotonic()
    with Fetcher(timeout=30) as guarded, pytest.raises(FetchRefused, match="not a public address"):
        guarded.fetch(url)
    # No connection attempt waited on: that would take the 30 s timeout (10.0.0.1 and the
    # metadata address answer nothing here). The margin is for a loaded machine.
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/", "/relative"])
def test_schemes_other_than_http_are_refused(url: str, fetcher: Fetcher) -> None:
    with pytest.raises(FetchRefused, match="only http and https"):
        fetcher.fetch(url)


@pytest.mark.parametrize("url", ["http://[::1", "http:///no-host"])
def test_an_invalid_url_is_refused(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(FetchRefused, match="not a valid URL"):
        fetcher.fetch(url)


def test_a_redirect_is_followed_and_reported(web: FakeSearchServer, fetcher: Fetcher) -> None:
    page = fetcher.fetch(f"{web.url}/redirect/article")
    assert page.url == f"{web.url}/redirect/article"
    assert page.final_url == f"{web.url}/articles/acme-raises"


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/redirect/metadata", "169.254.169.254 is not a public address"),
        ("/redirect/loopback", "127.0.0.2 is not a public address"),
        ("/redirect/ftp", "only http and https"),
    ],
)
def test_every_redirect_hop_is_checked(web: FakeSearchServer, fetcher: Fetcher, path: str, refused: str) -> None:
    """The first hop is allowed (the fake is trusted); where it redirects to is not."""
    with pytest.raises(FetchRefused, match=refused):
        fetcher.fetch(f"{web.url}{path}")


def test_redirects_are_bounded(web: FakeSearchServer) -> None:
    with Fetcher(trusted_networks=LOOPBACK, max_redirects=3) as fetcher:
        with pytest.raises(FetchError, match="more than 3 times"):
            fetcher.fetch(f"{web.url}/redirect/loop")
    assert web.paths().count("/redirect/loop") == 4


class FakeDNS:
    """A resolver with fixed answers, standing in for socket.getaddrinfo."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.answers[host]
        ]


def test_the_connection_goes_to_the_address_that_was_checked(web: FakeSearchServer) -> None:
    """`news.invalid` exists only in the fetcher's own resolver: reaching the page proves the socket
    was opened to the vetted address, not to a second, unchecked resolution of the name."""
    dns = FakeDNS({"news.invalid": ["127.0.0.1"]})
    with Fetcher(trusted_networks=LOOPBACK, resolver=dns) as fetcher:
        page = fetcher.fetch(f"http://news.invalid:{web.port}/articles/acme-team")
    assert page.title == "Inside Acme Robotics' engineering team"
    assert {request.headers["host"] for request in web.requests} == {f"news.invalid:{web.port}"}
    assert set(dns.asked) == {"news.invalid"}


def test_a_name_with_any_private_address_is_refused(web: FakeSearchServer) -> None:
    """A rebinding-style answer mixing a public and a private address is refused outright."""
    dns = FakeDNS({"rebind.invalid": ["93.184.216.34", "127.0.0.1"]})
    with Fetcher(resolver=dns) as fetcher, pytest.raises(FetchRefused, match="rebind.invalid is not a public address"):
        fetcher.fetch(f"http://rebind.invalid:{web.port}/articles/acme-team")
    assert web.requests == []


@pytest.mark.parametrize("host", ["0x7f.0.0.1", "rebind.invalid"])
def test_a_refusal_does_not_say_what_the_name_resolved_to(host: str, caplog: pytest.LogCaptureFixture) -> None:
    """The refusal reaches the report, read by whoever typed the website; the worker's log keeps
    the address, for whoever runs it."""
    dns = FakeDNS({host: ["127.0.0.1"]})
    with Fetcher(resolver=dns) as fetcher, pytest.raises(FetchRefused) as refused:
        fetcher.fetch(f"http://{host}/")
    assert str(refused.value) == f"http://{host}/: {host} is not a public address"
    assert "127.0.0.1" in caplog.text and host in caplog.text


def test_an_unknown_name_is_a_fetch_error() -> None:
    with Fetcher(resolver=FakeDNS({})) as fetcher, pytest.raises(FetchError, match="cannot resolve nowhere.invalid"):
        fetcher.fetch("http://nowhere.invalid/")


# robots.txt.


def test_robots_txt_is_obeyed_and_the_page_never_requested(web: FakeSearchServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchRefused, match="robots.txt"):
        fetcher.fetch(f"{web.url}/private/secret")
    with pytest.raises(FetchRefused, match="robots.txt"):
        fetcher.fetch(f"{web.url}/redirect/private-path")
    assert "/private/secret" not in web.paths()


def test_robots_txt_is_read_once_per_origin(web: FakeSearchServer, fetcher: Fetcher) -> None:
    fetcher.fetch(f"{web.url}/articles/acme-raises")
    fetcher.fetch(f"{web.url}/articles/acme-team")
    fetcher.fetch(f"{web.url}/redirect/article")
    assert web.paths().count("/robots.txt") == 1


def test_rules_for_our_own_agent_apply(web: FakeSearchServer, fetcher: Fetcher) -> None:
    web.set_robots(body="User-agent: StartupReportsBot\nDisallow: /articles/\n\nUser-agent: *\nAllow: /\n")
    with pytest.raises(FetchRefused, match="robots.txt"):
        fetcher.fetch(f"{web.url}/articles/acme-raises")
    assert fetcher.fetch(f"{web.url}/notes.txt").text


@pytest.mark.parametrize(("status", "allowed"), [(401, False), (403, False), (404, True), (410, True), (500, True)])
def test_robots_txt_status_decides_when_there_are_no_rules(
    web: FakeSearchServer, fetcher: Fetcher, status: int, allowed: bool
) -> None:
    web.set_robots(status=status)
    if allowed:
        assert fetcher.fetch(f"{web.url}/articles/acme-raises").text
    else:
        with pytest.raises(FetchRefused, match="robots.txt"):
            fetcher.fetch(f"{web.url}/articles/acme-raises")
        assert "/articles/acme-raises" not in web.paths()


def test_an_unreachable_robots_txt_allows_the_page() -> None:
    """Nothing listens on port 1: no robots.txt to be had counts as no rules (see fetch.py)."""
    with Fetcher(trusted_networks=LOOPBACK) as fetcher:
        assert fetcher.allowed_by_robots("http://127.0.0.1:1/anything")
    with Fetcher(trusted_networks=LOOPBACK) as fetcher, pytest.raises(FetchError, match="could not be fetched"):
        fetcher.fetch("http://127.0.0.1:1/anything")


# Settings.


def test_the_fetcher_takes_its_limits_from_the_settings(web: FakeSearchServer) -> None:
    settings = make_settings(fetch_timeout=3, fetch_max_bytes=4096, fetch_max_chars=500, fetch_allow_private=True)
    with Fetcher.from_settings(settings) as fetcher:
        assert (fetcher.timeout, fetcher.max_bytes, fetcher.max_chars) == (3, 4096, 500)
        with pytest.raises(FetchError, match="larger than 4096 bytes"):
            fetcher.fetch(f"{web.url}/big")
        assert fetcher.fetch(f"{web.url}/articles/acme-raises").title  # private allowed by the setting


# Duplicate results.


def test_duplicate_results_are_dropped_keeping_the_first() -> None:
    urls = [
        "https://Example.com/a/",
        "https://example.com/a#section",
        "HTTPS://EXAMPLE.COM:443/a?utm_source=x&utm_medium=y",
        "https://example.com/a?id=2",
        "http://example.com/a",
        "https://example.com/b",
    ]
    results = [SearchResult(title=str(n), url=url, snippet="") for n, url in enumerate(urls)]
    assert [result.title for result in drop_duplicates(results)] == ["0", "3", "4", "5"]


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://Example.COM/Path/", "https://example.com/Path"),
        ("http://example.com:80/", "http://example.com"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com/x?b=2&utm_campaign=z&a=1#top", "https://example.com/x?a=1&b=2"),
        ("https://example.com/a/?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref_src=twsrc&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?id=1#:~:text=founders", "https://example.com/a?id=1"),
    ],
)
def test_normalised_urls(url: str, normal: str) -> None:
    assert normalise_url(url) == normal


@pytest.mark.parametrize(
    ("url", "listed"),
    [
        ("https://Example.com/a/?utm_source=news&utm_medium=email#top", "https://example.com/a/"),
        ("https://example.com/post?fbclid=IwAR0&p=12", "https://example.com/post?p=12"),
        ("https://example.com/report.pdf", "https://example.com/report.pdf"),
    ],
)
def test_the_canonical_url_has_no_tracking_parameters_or_fragment(url: str, listed: str) -> None:
    assert canonical_url(url) == listed
