"""The figure matcher: the notations it reads, what it must not take for a figure, and when a
source's figure states a claimed one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from worker.sources.figures import (
    COUNT,
    MONEY,
    PERCENT,
    YEAR,
    claimed_figures,
    find_figures,
    is_estimate,
    stated_in,
)


def only(text: str) -> tuple[str, Decimal, str]:
    [figure] = find_figures(text)
    return figure.kind, figure.value, figure.unit


@pytest.mark.parametrize(
    "text",
    [
        "$12M",
        "$12m",
        "$12 million",
        "$ 12 million",
        "$12,000,000",
        "12,000,000 USD",
        "USD 12m",
        "US$12M",
        "12 million dollars",
        "12 million US dollars",
        "$12.0M",
        "$0.012bn",
        "$12,000k",
    ],
)
def test_twelve_million_dollars_in_every_notation(text: str) -> None:
    assert only(f"It raised {text} last year") == (MONEY, Decimal(12_000_000), "USD")


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("$1.5bn", 1_500_000_000, "USD"),
        ("$1,5bn", 1_500_000_000, "USD"),  # a decimal comma
        ("$1B", 1_000_000_000, "USD"),
        ("€3.5m", 3_500_000, "EUR"),
        ("€3.5 million", 3_500_000, "EUR"),
        ("3.5 million euros", 3_500_000, "EUR"),
        ("£400k", 400_000, "GBP"),
        ("£400 thousand", 400_000, "GBP"),
        ("400,000 pounds", 400_000, "GBP"),
        ("CHF 2 billion", 2_000_000_000, "CHF"),
        ("A$12M", 12_000_000, "A$"),
        ("$49", 49, "USD"),
    ],
)
def test_currencies_and_scales(text: str, value: int, currency: str) -> None:
    assert only(f"Priced at {text}, it said") == (MONEY, Decimal(value), currency)


@pytest.mark.parametrize(
    ("text", "kind", "value", "unit"),
    [
        ("Churn is 2% a month", PERCENT, 2, ""),
        ("margins of 72.5 percent", PERCENT, Decimal("72.5"), ""),
        ("growing 20 % a month", PERCENT, 20, ""),
        ("It has 45 employees", COUNT, 45, "staff"),
        ("with 45 full-time engineers", COUNT, 45, "staff"),
        ("a team of 25 in Austin", COUNT, 25, "staff"),
        ("We are a team of 1,200.", COUNT, 1200, "staff"),
        ("Acme employs about 40 in Berlin", COUNT, 40, "staff"),
        ("a 30-person startup", COUNT, 30, "staff"),
        ("1,200 paying customers", COUNT, 1200, "customers"),
        ("over 2 million users", COUNT, 2_000_000, "customers"),
        ("12k subscribers", COUNT, 12_000, "customers"),
        ("it employs 45 people", COUNT, 45, "people"),
        ("Founded in 2021", YEAR, 2021, ""),
    ],
)
def test_percentages_counts_and_years(text: str, kind: str, value: int, unit: str) -> None:
    assert only(text) == (kind, Decimal(value), unit)


@pytest.mark.parametrize(
    "text",
    [
        "It took 2 weeks for customers to notice",  # a duration, not a count of customers
        "Web 3.0, GPT-4, 24/7 support and 3D vision",
        "three pilots in Europe",  # numbers in words are not read
        "Section [3] and item 4 of 12",
        "revenue tripled",
    ],
)
def test_what_is_not_a_figure(text: str) -> None:
    assert find_figures(text) == []


def test_a_year_is_not_an_amount_and_a_series_letter_is_not_a_number() -> None:
    figures = find_figures("Acme raised a $12M Series A in 2021 and hired 2021 people later")
    assert [(f.text, f.kind) for f in figures] == [("$12M", MONEY), ("2021", YEAR), ("2021", YEAR)]
    assert [(f.text, f.kind) for f in find_figures("Series A in 2021")] == [("2021", YEAR)]
    assert [f.kind for f in find_figures("2,021 customers")] == [COUNT]  # with a comma, a count


def test_figures_keep_their_place_in_the_text() -> None:
    text = "Revenue of $4M, up 300%, from 12 customers."
    assert [(text[f.start : f.end], f.kind) for f in find_figures(text)] == [
        ("$4M", MONEY),
        ("300%", PERCENT),
        ("12 customers", COUNT),
    ]


def test_a_year_is_a_claim_only_in_a_sentence_about_founding_or_a_round() -> None:
    assert [f.text for f in claimed_figures("Founded in 2019, it raised a seed round in 2021.")] == ["2019", "2021"]
    assert [f.text for f in claimed_figures("Acme closed its Series A in 2023.")] == ["2023"]
    assert claimed_figures("In 2024 the market kept growing.") == []
    assert [f.text for f in claimed_figures("In 2024 it had 45 employees.")] == ["45 employees"]


def stated(claim: str, source: str) -> bool:
    [claimed] = find_figures(claim)
    return stated_in(claimed, find_figures(source))


@pytest.mark.parametrize(
    ("claim", "source"),
    [
        ("$12M", "has raised a $12 million Series A round"),
        ("$12M", "raised 12 million dollars"),
        ("$12 million", "12,000,000 USD"),
        ("$1.5bn", "a valuation of $1,500 million"),
        ("$12M", "raised $12.3 million"),  # rounded as the claim writes it
        ("$4.2M", "ARR of $4,180,000"),
        ("3%", "churn of 3.4%"),
        ("45 employees", "Acme Robotics employs 45 people"),
        ("a team of 45", "45 employees"),
        ("1,200 customers", "1.2k customers"),
        ("founded in 2021", "the startup founded in 2021, has raised"),
    ],
)
def test_a_figure_the_source_states_in_other_words_is_found(claim: str, source: str) -> None:
    assert stated(claim, source)


@pytest.mark.parametrize(
    ("claim", "source"),
    [
        ("$15M", "has raised a $12 million Series A round"),
        ("$12M", "raised €12 million"),  # another currency
        ("$12M", "raised $12.6 million"),  # rounds to 13
        ("$1B", "valued at $1.4 billion"),  # rounds to 1, but 40 % off
        ("$12,000,000", "raised $12.3 million"),  # the claim is exact; the source is not that
        ("$12M", "12% of the market"),  # a percentage is not an amount
        ("$2021", "founded in 2021"),
        ("2021", "raised $2021M"),
        ("45 employees", "45 customers"),  # customers are not staff
        ("3%", "churn of 3.6%"),
        ("founded in 2020", "founded in 2021"),
    ],
)
def test_a_figure_the_source_does_not_state_is_not_found(claim: str, source: str) -> None:
    assert not stated(claim, source)


@pytest.mark.parametrize(
    ("sentence", "estimate"),
    [
        ("We estimate the SAM at $2B, based on 40,000 warehouses at $50k a year.", True),
        ("Our estimate of $300M assumes 5% of the TAM.", True),
        ("A bottom-up estimate: 2,000 accounts times $40k gives $80M.", True),
        ("The market is an estimated $9B.", False),  # an estimate, but not how it was made
        ("Based on the deck, revenue is $4M.", False),  # a basis, but not an estimate
    ],
)
def test_an_estimate_says_so_and_how_it_was_made(sentence: str, estimate: bool) -> None:
    assert is_estimate(sentence) is estimate
