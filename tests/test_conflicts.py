"""Facts the sources state differently, as open diligence questions with both citations."""

from __future__ import annotations

import pytest

from worker.sources.citations import Source
from worker.sources.conflicts import source_conflicts

ARTICLE = Source(
    2,
    "Acme raises $12M",
    "https://news.example/acme",
    "Acme Robotics, founded in 2021, has raised a $12 million Series A round. Its annual recurring revenue "
    "tripled to about $4 million. The company employs 45 people at its headquarters in Austin.",
    "web",
)


def deck(text: str) -> Source:
    return Source(1, "deck.pdf", None, text, "provided")


@pytest.mark.parametrize(
    ("deck_says", "question"),
    [
        (
            "We raised $15M in our Series A.",
            "The sources disagree on funding amounts: $15M [1] (the analyst's material) or $12M [2]. "
            "Which figures are right, and are they different rounds?",
        ),
        (
            "ARR reached $6.5M this year.",
            "The sources disagree on revenue: $6.5M [1] (the analyst's material) or $4M [2]. "
            "Which figure is right, and for which period?",
        ),
        (
            "Acme was founded in 2019 by two engineers.",
            "The sources disagree on the founding year: 2019 [1] (the analyst's material) or 2021 [2]. Which is right?",
        ),
        (
            "The deck says 40 employees.",
            "The sources disagree on head count: 40 [1] (the analyst's material) or 45 [2]. Which is current?",
        ),
        (
            "We are a team of 1,200.",
            "The sources disagree on head count: 1,200 [1] (the analyst's material) or 45 [2]. Which is current?",
        ),
        (
            "Acme is headquartered in Denver, Colorado.",
            "The sources disagree on where the company is headquartered: Denver [1] (the analyst's material) "
            "or Austin [2]. Which is current?",
        ),
    ],
)
def test_the_deck_against_the_web(deck_says: str, question: str) -> None:
    assert source_conflicts([deck(deck_says), ARTICLE]) == [question]


def test_between_web_sources_and_agreeing_in_other_words() -> None:
    site = Source(3, "About us", "https://acme.example/about", "Acme is based in Austin, with a team of 25.", "web")
    press = Source(4, "Press", "https://press.example/acme", "It raised 12 million dollars in 2024.", "web")
    assert source_conflicts([ARTICLE, site, press]) == [
        "The sources disagree on head count: 45 [2] or 25 [3]. Which is current?"
    ]


def test_sources_that_agree_or_say_nothing_raise_no_question() -> None:
    same = deck("We raised $12M. We were founded in 2021 and are based in Austin with 45 employees.")
    silent = Source(3, "Blog", "https://blog.example", "Warehouse robots keep getting cheaper.", "web")
    assert source_conflicts([same, ARTICLE, silent]) == []
    assert source_conflicts([ARTICLE]) == []


def test_an_amount_belongs_to_the_word_nearest_it() -> None:
    """A valuation is neither funding nor revenue; revenue next to a round is revenue."""
    other = Source(
        3,
        "Profile",
        "https://profile.example/acme",
        "The round valued Acme at $80M. Revenue of $4M came mostly from pilots.",
        "web",
    )
    assert source_conflicts([ARTICLE, other]) == []


def test_currencies_are_shown_as_written() -> None:
    euros = deck("We raised €12 million.")
    assert source_conflicts([euros, ARTICLE]) == [
        "The sources disagree on funding amounts: €12M [1] (the analyst's material) or $12M [2]. "
        "Which figures are right, and are they different rounds?"
    ]
