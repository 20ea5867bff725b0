"""A report's key facts as data (`worker.facts`), read once from the report as it is assembled: a
plain module, no Flask, no Celery, no database; the report's Markdown and its research in, one
`Fact` per entry of `FACT_FIELDS` out.

The facts are what the report states, read as "what changed" reads them (`worker.changes`): the
Snapshot's **Key facts** lines (`worker.pipeline.KEY_FACTS`, whose labels are the facts' labels),
each with the sources it cites; the website the research fixed for the company (else the Website
line); and the recommendation the summary ends with (the pipeline asks for pass, watch, or take a
meeting). Whether a fact's figures were found in its sources is the report's own figure check
(`FigureCheck.found_in_cited`), asked about the fact's line.
"""

from __future__ import annotations

import re

from worker.changes import KeyFact, ParsedReport, SourceEntry, cited_in, parse_report, sentences
from worker.facts import FACT_FIELDS, FACT_LABELS, Fact, FactSource
from worker.research import Research
from worker.sources.citations import url_key
from worker.sources.fact_check import FigureCheck
from worker.sources.identity import registrable_domain

SUMMARY_TITLE = "Summary"
_RECOMMEND = re.compile(r"\brecommend\w*", re.IGNORECASE)
_RECOMMENDATION = re.compile(
    r"\b((?:(?:tak|hav|schedul)(?:e|ing) |set(?:ting)? up )?an? (?:first |intro(?:ductory)? )?(?:meeting|call)"
    r"|meet(?:ing)? (?:with )?(?:the )?(?:founders?|team|ceo|company)|watch(?:ing|list)?|pass(?:ing)?)\b",
    re.IGNORECASE,
)
# What makes the word after it no recommendation: "not a pass", "no pass yet", "do not recommend passing",
# "nor a meeting".
_NEGATED = re.compile(r"(?:\bnot|\bno|\bnor|\bnever|n't)\s+(?:(?:a|an|to|be|recommend\w*)\s+)*$", re.IGNORECASE)


def parse_recommendation(summary: str) -> tuple[str | None, str]:
    """The summary's recommendation, as "Pass", "Watch" or "Take a meeting", and the sentence that
    gives it; (None, "") when it gives none. The sentence that says "recommend" (the last one that
    does) is read from that word on, so "Recommendation: pass, as we did not take a meeting" is a
    pass; without one, the last sentence is read. A negated word ("not a pass", "we do not
    recommend passing") is none."""
    said = sentences(summary)
    candidates = [s for s in reversed(said) if _RECOMMEND.search(s)] or said[-1:]
    for sentence in candidates:
        plain = sentence.replace("*", "").replace("_", "")
        recommend = _RECOMMEND.search(plain)
        for found in _RECOMMENDATION.finditer(plain, recommend.end() if recommend else 0):
            if _NEGATED.search(plain, 0, found.start()):
                continue
            word = found.group(1).casefold()
            value = "Watch" if word.startswith("watch") else "Pass" if word.startswith("pass") else "Take a meeting"
            return value, sentence
    return None, ""


def _source(entry: SourceEntry) -> FactSource:
    return FactSource(entry.number, entry.title, entry.url)


def _on_site(url: str, website: str) -> bool:
    """`url` is a page of `website`: on its registrable domain, or (for an address without one,
    such as an IP address) the website's own page."""
    domain = registrable_domain(website)
    return registrable_domain(url) == domain if domain else url_key(url) == url_key(website)


def _website(report: ParsedReport, research: Research | None) -> Fact:
    """The company's website: the one the research fixed (with the sources it lists from the
    website's domain), else what the Key facts' Website line says."""
    website = research.company_website if research is not None else None
    if not website:
        return _stated("website", report.facts[FACT_LABELS["website"]], None)
    sources = tuple(_source(s) for s in report.sources.values() if s.url and _on_site(s.url, website))
    return Fact("website", website, sources, None)


def _stated(key: str, fact: KeyFact, check: FigureCheck | None) -> Fact:
    if fact.value is None:
        return Fact(key, None)
    found = check.found_in_cited(fact.line) if check is not None else None
    return Fact(key, fact.value, tuple(map(_source, fact.sources)), found)


def _recommendation(report: ParsedReport, check: FigureCheck | None) -> Fact:
    value, sentence = parse_recommendation(report.sections.get(SUMMARY_TITLE, ""))
    if value is None:
        return Fact("recommendation", None)
    found = check.found_in_cited(sentence) if check is not None else None
    return Fact("recommendation", value, tuple(map(_source, cited_in(sentence, report.sources))), found)


def extract_facts(markdown: str, research: Research | None) -> list[Fact]:
    """The report's key facts, in `FACT_FIELDS` order; a fact the report does not state is
    unknown (value None). Without `research` (or with no sources in it) nothing is checked."""
    report = parse_report(markdown)
    check = FigureCheck(research.sources) if research is not None and research.sources else None
    facts = []
    for key, label in FACT_FIELDS:
        if key == "recommendation":
            facts.append(_recommendation(report, check))
        elif key == "website":
            facts.append(_website(report, research))
        else:
            facts.append(_stated(key, report.facts[label], check))
    return facts
