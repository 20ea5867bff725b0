"""Figures in prose, read in the notations people write them, so that a figure in a memo can be
looked up in the sources it cites.

What counts as a figure: an amount of money (`$12M`, `$12 million`, `12,000,000 USD`, "12 million
dollars", `€3.5m`, `£400k`, `$1.5bn`, `USD 2 billion`), a percentage (`12%`, "12 percent"), a count
of people or customers ("45 employees", "a team of 25", "1,200 paying customers", "2 million
users") and a year (every year in a source; in a claim, only in a sentence about founding or a
funding round: "founded in 2021", "a Series A in 2023").

A claimed figure is *stated* by a source when the source has a figure of the same kind (money in
the same currency, a count of the same sort of people) and the same value, allowing the rounding
the claim writes: `$12M` for "$12.3 million" (never more than 5 % off, so not `$1B` for "$1.4
billion"), `3%` for "3.4%". Years must be equal.

Limits, honestly: a stated figure is one the source states, not one that is true, and not even
one the source states about the same thing (a competitor's $12M supports ours). Not understood:
numbers in words ("three pilots"), ranges beyond their last number ("70–80%" is read as 80%),
decimal commas beyond two digits and other locales' separators (`1.234,56`), currencies other than
$, €, £, ¥ and CHF, years written as counts ("2021 customers" is read as a year, not a count),
and counts of anything but people and customers. A library such as moneyparse reads money well
but not counts, percentages or years, which this check needs in the same pass, so it is `re` and
`decimal` here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

MONEY, PERCENT, COUNT, YEAR = "money", "percent", "count", "year"
# A rounded claim may be at most this far from the source's figure (money and counts).
TOLERANCE = Decimal("0.05")

_SCALES = {
    "k": 3, "thousand": 3,
    "m": 6, "mn": 6, "mm": 6, "mio": 6, "million": 6,
    "b": 9, "bn": 9, "billion": 9,
    "tn": 12, "trillion": 12,
}  # fmt: skip
_SCALE = r"(?:thousand|million|billion|trillion|mio|mn|mm|bn|tn|k|m|b)\b"
_WORD_SCALE = r"(?:thousand|million|billion)\b"
# Thousands with commas, or a plain number with a decimal point or a decimal comma of one or two
# digits (`$1,5bn`); a comma followed by three digits is always a thousands separator.
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+|,\d{1,2}(?!\d))?"
_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_PREFIX = r"(?:US|A|AU|C|CA|NZ|S|HK)?\$|€|£|¥|(?:USD|EUR|GBP|CHF|JPY)(?=\s?\d)"
_SUFFIX = r"(?:USD|EUR|GBP|CHF|JPY|(?:US\s)?dollars?|euros?|pounds?(?:\ssterling)?)\b"
_SUFFIX_CURRENCY = {"dollar": "USD", "euro": "EUR", "pound": "GBP"}
_SPACE = r"[ \u00a0]?"

_MONEY = re.compile(
    rf"""(?<![\w$€£¥.,])
    (?:
        (?P<pre>{_PREFIX}){_SPACE}(?P<n1>{_NUMBER})(?:{_SPACE}(?P<s1>{_SCALE}))?
      | (?P<n2>{_NUMBER})(?:{_SPACE}(?P<s2>{_SCALE}))?{_SPACE}(?P<post>{_SUFFIX})
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_PERCENT = re.compile(rf"(?<![\w.,])(?P<n>{_NUMBER}){_SPACE}(?:%|percent\b|per\scent\b)", re.IGNORECASE)

_STAFF_NOUNS = r"team\smembers|employees?|staff(?:ers)?|engineers|developers|workers|hires|FTEs?"
_CUSTOMER_NOUNS = (
    r"customers|clients|users|subscribers|members|merchants|accounts|businesses|companies|brands|retailers"
)
# Words that may stand between a number and its noun ("45 full-time employees"), but not these,
# which would make "2 weeks for customers" a count.
_NOT_A_MODIFIER = (
    r"(?:for|per|a|an|the|in|on|at|to|with|from|by|of|each|every|and|or|than|more|new|weeks?|months?|years?|"
    r"days?|hours?|times|thousand|million|billion)\b"
)
_COUNT = re.compile(
    rf"""(?<![\w$€£¥.,])(?P<n>{_NUMBER})(?:{_SPACE}(?P<s>{_WORD_SCALE}|k\b))?\+?\s
    (?:(?!{_NOT_A_MODIFIER})[A-Za-z][\w-]*\s){{0,2}}?
    (?:(?P<staff>{_STAFF_NOUNS})|(?P<customers>{_CUSTOMER_NOUNS})|(?P<people>people))\b""",
    re.IGNORECASE | re.VERBOSE,
)
_ABOUT = r"(?:about|around|roughly|some|over|nearly|almost|more\sthan|fewer\sthan|at\sleast)?\s?"
_STAFF_PHRASE = re.compile(
    rf"(?:\b(?:team|headcount|staff|workforce)\sof|\bemploy(?:s|ed|ing)?)\s{_ABOUT}(?P<n>{_NUMBER})(?![\w%]|[.,]\d)"
    rf"|(?<![\w.,])(?P<m>{_NUMBER})-(?:person|people|strong)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?<![\w$€£¥.,-])(?:19|20)\d\d(?![\w%]|[.,]\d)")
# A sentence in which a year is a claim worth checking: one about founding or a funding round.
_FOUNDING_OR_ROUND = re.compile(
    r"\b(?:founded|founding|co-?founded|established|incorporated|series\s[a-h]\b|seed|round|rais(?:e|ed|es|ing)|funding)",
    re.IGNORECASE,
)
# "We estimate … based on …": an estimate that says how it was made.
_ESTIMATE = re.compile(r"\bestimat", re.IGNORECASE)
_METHOD = re.compile(
    r"\b(?:based\son|assum\w*|using|derived\sfrom|calculated|multipl\w*|times|bottom-up|top-down)\b|×",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Figure:
    """A figure found in text. `unit` is the currency of money and the sort of count ("staff",
    "customers" or "people", which may be either); `step` is the rounding its writing implies
    (1,000,000 for `$12M`, 100,000 for `$12.5M`, 1 for `12,000,000 USD`)."""

    text: str
    kind: str
    value: Decimal
    unit: str = ""
    step: Decimal = Decimal(1)
    start: int = 0
    end: int = 0


def _number(digits: str, scale: str | None) -> tuple[Decimal, Decimal]:
    """The value and the rounding step of a number as written, with its scale word or letter."""
    if re.fullmatch(r"\d+,\d{1,2}", digits):
        digits = digits.replace(",", ".")
    digits = digits.replace(",", "")
    exponent = _SCALES[scale.lower()] if scale else 0
    decimals = len(digits.partition(".")[2])
    return Decimal(digits).scaleb(exponent), Decimal(1).scaleb(exponent - decimals)


def _currency(prefix: str | None, suffix: str | None) -> str:
    if prefix:
        prefix = prefix.strip().upper()
        return _SYMBOLS.get(prefix, prefix)  # "A$", "HK$", "CHF": their own currencies
    word = re.sub(r"^US\s", "", suffix or "", flags=re.IGNORECASE).lower().rstrip("s")
    word = re.sub(r"\ssterling$", "", word)
    return _SUFFIX_CURRENCY.get(word, word.upper())


def find_figures(text: str) -> list[Figure]:
    """Every figure in `text`, in order, each span read once (money before percentages, counts and
    years: `$2021M` is money, not a year)."""
    figures: list[Figure] = []
    taken: list[tuple[int, int]] = []

    def add(match: re.Match[str], kind: str, value: Decimal, unit: str = "", step: Decimal = Decimal(1)) -> None:
        start, end = match.span()
        if any(start < other_end and other_start < end for other_start, other_end in taken):
            return
        taken.append((start, end))
        figures.append(Figure(match.group(0), kind, value, unit, step, start, end))

    for match in _MONEY.finditer(text):
        digits, scale = (match["n1"], match["s1"]) if match["n1"] else (match["n2"], match["s2"])
        value, step = _number(digits, scale)
        add(match, MONEY, value, _currency(match["pre"], match["post"]), step)
    for match in _PERCENT.finditer(text):
        value, step = _number(match["n"], None)
        add(match, PERCENT, value, "", step)
    for match in _COUNT.finditer(text):
        value, step = _number(match["n"], match["s"])
        if _looks_like_a_year(match["n"]) and not match["s"]:
            continue
        unit = "staff" if match["staff"] else "customers" if match["customers"] else "people"
        add(match, COUNT, value, unit, step)
    for match in _STAFF_PHRASE.finditer(text):
        digits = match["n"] or match["m"]
        if not _looks_like_a_year(digits):
            add(match, COUNT, _number(digits, None)[0], "staff")
    for match in _YEAR.finditer(text):
        add(match, YEAR, Decimal(match.group(0)))
    return sorted(figures, key=lambda figure: figure.start)


def _looks_like_a_year(digits: str) -> bool:
    return bool(re.fullmatch(r"(?:19|20)\d\d", digits))


def claimed_figures(sentence: str) -> list[Figure]:
    """The figures a sentence of a memo claims: all of them, except years in a sentence that is
    not about founding or a funding round ("in 2024 the market grew" claims no year)."""
    figures = find_figures(sentence)
    if _FOUNDING_OR_ROUND.search(sentence):
        return figures
    return [figure for figure in figures if figure.kind != YEAR]


def is_estimate(sentence: str) -> bool:
    """The sentence says it is an estimate and how it was made ("we estimate … based on …")."""
    return bool(_ESTIMATE.search(sentence) and _METHOD.search(sentence))


def states(stated: Figure, claimed: Figure) -> bool:
    """Does a source's figure `stated` state the figure `claimed`, as the module's docstring says?"""
    if stated.kind != claimed.kind:
        return False
    if claimed.kind == MONEY and stated.unit != claimed.unit:
        return False
    if claimed.kind == COUNT and "people" not in (stated.unit, claimed.unit) and stated.unit != claimed.unit:
        return False
    if claimed.kind == YEAR:
        return stated.value == claimed.value
    difference = abs(stated.value - claimed.value)
    if difference * 2 > claimed.step:
        return False
    return claimed.kind == PERCENT or difference <= abs(stated.value) * TOLERANCE


def stated_in(claimed: Figure, source_figures: list[Figure]) -> bool:
    return any(states(stated, claimed) for stated in source_figures)
