"""Which company a name means, from search results grouped by registrable domain."""

from __future__ import annotations

import pytest

from worker.sources.base import SearchResult
from worker.sources.identity import (
    FULL,
    PARTIAL,
    CompanyAmbiguous,
    identify_company,
    match_strength,
    registrable_domain,
)


def result(url: str, title: str = "", snippet: str = "") -> SearchResult:
    return SearchResult(title=title or url, url=url, snippet=snippet)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.acme-robotics.co.uk/about", "acme-robotics.co.uk"),
        ("http://blog.acme.io:8080/x", "acme.io"),
        ("acme.com", "acme.com"),
        ("http://127.0.0.1:5000/", None),
        ("http://localhost/", None),
    ],
)
def test_the_registrable_domain_comes_from_the_public_suffix_list(url: str, domain: str | None) -> None:
    assert registrable_domain(url) == domain


@pytest.mark.parametrize(
    ("domain", "strength"),
    [
        ("acmerobotics.com", FULL),
        ("acme-robotics.io", FULL),
        ("getacmerobotics.com", FULL),
        ("acmeroboticshq.co.uk", FULL),
        ("acme.ai", PARTIAL),  # the first word only
        ("crunchbase.com", 0),
        ("techcrunch.com", 0),
        ("acmerobot.com", 0),  # not the name, nor a word of it
        ("ac.com", 0),  # too short to mean anything
    ],
)
def test_how_well_a_domain_matches_the_name(domain: str, strength: int) -> None:
    assert match_strength("Acme Robotics Inc.", domain) == strength


def test_one_domain_that_matches_best_is_the_company_and_aggregators_are_no_candidates() -> None:
    results = [
        result("https://www.crunchbase.com/organization/acme-robotics", "Acme Robotics - Crunchbase"),
        result("https://acme.ai/", "Acme AI | Chatbots"),
        result("https://www.acmerobotics.com/about", "About us | Acme Robotics", "Warehouse robots since 2019."),
        result("https://acmerobotics.com/team", "Team"),
    ]
    identity = identify_company("Acme Robotics", results)
    assert identity.website == "https://acmerobotics.com" and identity.domain == "acmerobotics.com"
    assert [(c.name, c.website) for c in identity.candidates] == [
        ("Acme AI", "https://acme.ai"),
        ("Acme Robotics", "https://acmerobotics.com"),
    ]
    assert [c.domain for c in identity.others] == ["acme.ai"]


def test_two_domains_that_match_equally_are_an_ambiguity_unless_the_best_is_taken() -> None:
    results = [
        result("https://acmerobotics.com/", "Acme Robotics — warehouse robots", "Robots that pick and pack."),
        result("https://news.example.com/acme", "Acme Robotics raises"),
        result("https://www.acme-robotics.io/", "Acme Robotics: home cleaning robots", "Robot vacuums for flats."),
    ]
    with pytest.raises(CompanyAmbiguous) as raised:
        identify_company("Acme Robotics", results)
    assert [c.to_dict() for c in raised.value.candidates] == [
        {"name": "Acme Robotics", "website": "https://acmerobotics.com", "snippet": "Robots that pick and pack."},
        {"name": "Acme Robotics", "website": "https://acme-robotics.io", "snippet": "Robot vacuums for flats."},
    ]
    assert "acmerobotics.com" in str(raised.value) and "acme-robotics.io" in str(raised.value)
    assert identify_company("Acme Robotics", results, take_best=True).website == "https://acmerobotics.com"


def test_the_analysts_website_decides_and_nothing_plausible_leaves_the_company_unknown() -> None:
    results = [result("https://acmerobotics.com/"), result("https://acme-robotics.io/")]
    assert identify_company("Acme Robotics", results, website="https://acme-robotics.io").domain == "acme-robotics.io"
    assert identify_company("Acme Robotics", [result("https://www.wikipedia.org/wiki/Acme")]).website is None
    assert identify_company("Acme Robotics", []).website is None
