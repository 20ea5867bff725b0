"""Facts that the sources state differently: open diligence questions, each value with the sources
that state it ("head count: 40 [1] (the analyst's material) or 45 [6]").

Five facts are compared, between web pages and between the analyst's material and the web: the
funding amounts, the revenue, the founding year, the head count and the headquarters. Each is read
from the sentence it is stated in: an amount belongs to the funding or revenue word nearest to it
(`raised`, `Series A`; `revenue`, `ARR`), a year follows "founded" or "established", a head count
is a count of staff (or of people, in a sentence about employees or the team), and headquarters
are the capitalised place after "headquartered in", "based in" or "headquarters in".

Two sources disagree when the values each states differ. A source that names a round and the
total raised disagrees with one that names only the round: the question then asks which is
which. Values stated in other words than these are not compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from worker.sources.citations import Source, escape_markdown
from worker.sources.figures import COUNT, MONEY, Figure, find_figures

FUNDING, REVENUE, FOUNDED, HEAD_COUNT, HEADQUARTERS = "funding", "revenue", "founded", "head count", "headquarters"


@dataclass(frozen=True)
class _Fact:
    label: str
    question: str


FACTS = {
    FUNDING: _Fact("funding amounts", "Which figures are right, and are they different rounds?"),
    REVENUE: _Fact("revenue", "Which figure is right, and for which period?"),
    FOUNDED: _Fact("the founding year", "Which is right?"),
    HEAD_COUNT: _Fact("head count", "Which is current?"),
    HEADQUARTERS: _Fact("where the company is headquartered", "Which is current?"),
}
# How far (in characters) an amount may be from the word that says what it is.
_NEAR = 80
_AMOUNT_WORDS = [
    (FUNDING, re.compile(r"\b(?:rais\w*|fund\w*|round|series\s[a-h]\b|seed|invest\w*)", re.IGNORECASE)),
    (REVENUE, re.compile(r"\b(?:revenue|ARR|MRR|sales|turnover|bookings)\b", re.IGNORECASE)),
    # A valuation is neither; nearest to an amount, it keeps the amount from counting as either.
    ("", re.compile(r"\b(?:valuation|valued|worth)\b", re.IGNORECASE)),
]
_FOUNDED = re.compile(
    r"\b(?:founded|established|incorporated|started)\b[^.\n]{0,40}?\b((?:19|20)\d\d)\b", re.IGNORECASE
)
_STAFF_CONTEXT = re.compile(r"\b(?:employ\w*|staff|team|headcount|workforce)\b", re.IGNORECASE)
_HEADQUARTERS = re.compile(
    r"\b(?:headquartered|headquarters|based|HQ)\s(?:is\s|are\s)?(?:in|at)\s(?:the\s)?"
    r"((?:[A-Z][\w'.-]*)(?:\s(?:[A-Z][\w'.-]*))*)"
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def source_conflicts(sources: Sequence[Source]) -> list[str]:
    """One open question per fact the sources state differently; empty when they agree or say
    nothing. Each value comes with its citations, and "(the analyst's material)" when only the
    analyst's own material states it."""
    stated: dict[str, dict[int, dict[str, str]]] = {fact: {} for fact in FACTS}
    for source in sources:
        for fact, key, shown in _facts_in(source.excerpt):
            stated[fact].setdefault(source.number, {})[key] = shown
    provided = {source.number for source in sources if source.kind == "provided"}
    questions = []
    for fact, by_source in stated.items():
        if len({frozenset(values) for values in by_source.values()}) < 2:
            continue
        options: dict[str, tuple[str, list[int]]] = {}
        for number, values in sorted(by_source.items()):
            for key, shown in values.items():
                options.setdefault(key, (shown, []))[1].append(number)
        # In the order of the first source that states each value.
        ordered = sorted(options.values(), key=lambda option: (option[1][0], option[0]))
        listed = " or ".join(_option(shown, numbers, provided) for shown, numbers in ordered)
        questions.append(f"The sources disagree on {FACTS[fact].label}: {listed}. {FACTS[fact].question}")
    return questions


def _option(shown: str, numbers: list[int], provided: set[int]) -> str:
    mine = " (the analyst's material)" if set(numbers) <= provided else ""
    return f"{shown} {''.join(f'[{n}]' for n in numbers)}{mine}"


def _facts_in(text: str) -> list[tuple[str, str, str]]:
    """(fact, value compared, value shown) for each fact stated in `text`."""
    found: list[tuple[str, str, str]] = []
    for sentence in _SENTENCE.split(text):
        figures = find_figures(sentence)
        for figure in figures:
            if figure.kind == MONEY and (fact := _amount_fact(sentence, figure)):
                found.append((fact, f"{figure.unit} {figure.value.normalize()}", _money(figure)))
            elif figure.kind == COUNT and (
                figure.unit == "staff" or figure.unit == "people" and _STAFF_CONTEXT.search(sentence)
            ):
                found.append((HEAD_COUNT, str(figure.value.normalize()), f"{figure.value:,f}"))
        for match in _FOUNDED.finditer(sentence):
            found.append((FOUNDED, match.group(1), match.group(1)))
        for match in _HEADQUARTERS.finditer(sentence):
            place = match.group(1).rstrip(".")
            found.append((HEADQUARTERS, place.casefold(), escape_markdown(place)))
    return found


def _amount_fact(sentence: str, figure: Figure) -> str:
    """The fact an amount states: that of the nearest funding or revenue word, or ""."""
    nearest, fact = _NEAR + 1, ""
    for name, words in _AMOUNT_WORDS:
        for word in words.finditer(sentence):
            distance = max(word.start() - figure.end, figure.start - word.end(), 0)
            if distance < nearest:
                nearest, fact = distance, name
    return fact


def _money(figure: Figure) -> str:
    """`$12M`, `€3.5M`, `$1.5B`, `CHF 400k`: an amount as the questions show it."""
    value, suffix = figure.value, ""
    for scale, letter in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if abs(value) >= scale:
            value, suffix = value / scale, letter
            break
    number = f"{value.normalize():f}"
    symbol = _SYMBOLS.get(figure.unit)
    return f"{symbol}{number}{suffix}" if symbol else f"{figure.unit} {number}{suffix}"
