"""What changed between two versions of a company's report: a plain module, no Flask, no Celery,
no database; the reports' Markdown in, a summary out.

The comparison reads what the pipeline writes (`worker.pipeline.render_markdown`): the sections
by their `## <title>` headings, the Snapshot's **Key facts** lines (`KEY_FACTS`), the numbered
Sources list and the Recent news items. Sentences are compared with difflib, each with its
citations read as the URLs they point at, so that a source renumbered in the new version does not
make an unchanged sentence look new.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from worker.pipeline import KEY_FACTS, SECTIONS
from worker.recency import NEWS_TITLE
from worker.sources.citations import UNSUPPORTED_CLAIM, split_code_blocks
from worker.sources.figures import find_figures
from worker.sources.sentences import HEADING, split_units

SOURCES_TITLE = "Sources"
LAST_ROUND, LAST_ROUND_DATE = "Last round", "Last round date"
_HEADING = re.compile(r"^## (.+?)\s*$", re.MULTILINE)
# "1. Title — [url](href) — …" or, when the numbers are not 1…n, "7\. Title — …".
_SOURCE_ITEM = re.compile(r"^(\d+)\\?\.\s+(.*)$", re.MULTILINE)
_SOURCE_LINK = re.compile(r" — \[((?:\\.|[^\]\\])*)\]\([^)\s]*\)")
_CITATION = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_FOOTNOTE = re.compile(r"⚠?\[\^[^\]]+\]")
_ESCAPED = re.compile(r"\\(.)")
# "- **Stage:** Series B [2]", as asked, or as a model writes it otherwise: "- **Stage**: …",
# "- __Stage:__ …", "- Stage: …".
_KEY_FACT = re.compile(
    r"^[ \t]*[-*+][ \t]+(?:\*\*|__)?[ \t]*(?P<label>[^\W\d_][^*_:\n]*?)[ \t]*"
    r"(?::[ \t]*(?:\*\*|__)?|(?:\*\*|__)[ \t]*:)[ \t]*(?P<value>.*?)[ \t]*$",
    re.MULTILINE,
)
_NEWS_ITEM = re.compile(r"^- \*\*(?P<date>.*?)\*\*: (?P<title>.*?) \[(?P<number>\d+)\]\s*$", re.MULTILINE)
# A sentence that announces money raised in a round: "raised a $30M Series B", "closes its seed round".
_ROUND = re.compile(
    r"\b(?:raise[sd]?|raising|closed?|closes|secured?|secures|lands?|landed)\b.{0,80}?"
    r"\b(?:round|pre-seed|seed|series [a-h]|funding)\b",
    re.IGNORECASE,
)
_UNKNOWN = frozenset(
    {"", "unknown", "not known", "not stated", "not disclosed", "undisclosed", "n/a", "none found", "—", "-"}
)
# "Unknown (not in the sources)": what is unknown, with why.
_ASIDE = re.compile(r"\s*\([^()]*\)$")
# A value's bold, and its links as their text: "**Series A**", "[acme.com](https://acme.com)".
_STRONG = re.compile(r"\*\*|__")
_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*\)")
_HEDGES = frozenset(
    {"about", "approximately", "approx", "around", "roughly", "some", "over", "nearly", "demo", "figure"}
)


@dataclass(frozen=True)
class SourceEntry:
    number: int
    title: str
    #: None for what the analyst provided (notes, a PDF).
    url: str | None


@dataclass(frozen=True)
class KeyFact:
    name: str
    #: As the report states it, without its citations; None when unknown.
    value: str | None
    sources: tuple[SourceEntry, ...]
    #: The line as the report writes it (label, value, citations; no footnote marks), "" when the
    #: report has no line for it: a version written before the label was asked for.
    line: str = ""


@dataclass(frozen=True)
class ParsedReport:
    """A report's Markdown as the comparison reads it."""

    sections: dict[str, str]
    sources: dict[int, SourceEntry]
    facts: dict[str, KeyFact]
    news: tuple[tuple[str, str, int], ...]  # (date, title, source number)


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text).replace("&lt;", "<")


def split_sections(markdown: str) -> dict[str, str]:
    """Each `## <title>` section's body (up to the next `##`), by title; headings inside fenced code
    are not sections."""
    prose = "".join(("\0" * len(text)) if is_code else text for is_code, text in split_code_blocks(markdown))
    matches = list(_HEADING.finditer(prose))
    sections = {}
    for index, match in enumerate(matches):
        last = index + 1 == len(matches)
        body = markdown[match.end() : len(markdown) if last else matches[index + 1].start()]
        if last:  # the footer (who wrote what, the footnotes) after the last section is none of it
            body = body.split("\n---\n", 1)[0]
        sections.setdefault(match.group(1), body.strip())
    return sections


def parse_sources(body: str) -> dict[int, SourceEntry]:
    """The numbered Sources list: each source's number, title and URL (None for the analyst's)."""
    sources = {}
    for match in _SOURCE_ITEM.finditer(body):
        number, item = int(match.group(1)), match.group(2)
        link = _SOURCE_LINK.search(item)
        if link:
            title, url = item[: link.start()], _unescape(link.group(1))
        else:
            title, url = item.split(" (provided by the analyst)", 1)[0], None
        sources[number] = SourceEntry(number, _unescape(title).strip(), url)
    return sources


def _cited(text: str) -> list[int]:
    numbers: list[int] = []
    for match in _CITATION.finditer(text):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            ends = [int(n) for n in re.split(r"\s*[–-]\s*", part) if n]
            if len(ends) == 2 and 0 <= ends[1] - ends[0] <= 50:
                numbers.extend(range(ends[0], ends[1] + 1))
            else:
                numbers.extend(ends)
    return list(dict.fromkeys(numbers))


def cited_in(text: str, sources: Mapping[int, SourceEntry]) -> list[SourceEntry]:
    """The listed sources `text` cites by number (`[2]`, `[1, 3]`, `[2–4]`), in order, once each."""
    return [sources[n] for n in _cited(text) if n in sources]


def _label_key(label: str) -> str:
    """A label as it is matched: "Total raised (USD)", "Head-count" and "HEADCOUNT" are the
    Key facts' "Total raised" and "Head count"."""
    return re.sub(r"[\s-]", "", _ASIDE.sub("", label)).casefold()


def parse_key_facts(snapshot: str, sources: Mapping[int, SourceEntry]) -> dict[str, KeyFact]:
    """The Snapshot's Key facts lines (`- **Stage:** Series B [2]`), by label; a label the report
    does not give, or gives as "Unknown", is unknown. The first line of a label counts."""
    wanted = {_label_key(label): label for label in KEY_FACTS}
    facts: dict[str, KeyFact] = {}
    for match in _KEY_FACT.finditer(snapshot):
        label = wanted.get(_label_key(match.group("label")))
        if label is None or label in facts:
            continue
        raw = _FOOTNOTE.sub("", match.group("value"))
        cited = cited_in(raw, sources)
        plain = _LINK.sub(r"\1", _STRONG.sub("", _CITATION.sub("", raw)))
        value = " ".join(plain.split()).rstrip(".").strip()
        known = _ASIDE.sub("", value).casefold().rstrip(".") not in _UNKNOWN
        line = _FOOTNOTE.sub("", match.group(0)).strip()
        facts[label] = KeyFact(label, value if known else None, tuple(cited) if known else (), line)
    for label in KEY_FACTS:
        facts.setdefault(label, KeyFact(label, None, ()))
    return facts


def parse_report(markdown: str) -> ParsedReport:
    sections = split_sections(markdown)
    sources = parse_sources(sections.get(SOURCES_TITLE, ""))
    facts = parse_key_facts(sections.get(SECTIONS[0].title, ""), sources)
    news = tuple(
        (_unescape(m.group("date")), _unescape(m.group("title")), int(m.group("number")))
        for m in _NEWS_ITEM.finditer(sections.get(NEWS_TITLE, ""))
    )
    return ParsedReport(sections, sources, facts, news)


def sentences(body: str) -> list[str]:
    """The sentences, list items and table rows of a section's body, as written, headings aside."""
    out = []
    for is_code, text in split_code_blocks(body):
        if is_code:
            out.extend(line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("```"))
            continue
        for unit in split_units(text):
            if unit.kind != HEADING:
                sentence = " ".join(text[unit.start : unit.end].split())
                if sentence:
                    out.append(sentence)
    return out


def _comparable(sentence: str, sources: Mapping[int, SourceEntry]) -> str:
    """A sentence as it is compared: citations as the URLs (or titles) they point at, footnote
    marks dropped, case and spacing ignored."""
    sentence = _FOOTNOTE.sub("", sentence.replace(UNSUPPORTED_CLAIM, ""))

    def cited(match: re.Match[str]) -> str:
        names = sorted((s.url or s.title) if (s := sources.get(n)) else str(n) for n in _cited(match.group(0)))
        return "[" + " ".join(names) + "]"

    return " ".join(_CITATION.sub(cited, sentence).casefold().split())


def _readable(sentence: str) -> str:
    """A sentence as a reader sees it in a list of changes: without footnote marks."""
    return " ".join(_FOOTNOTE.sub("", sentence.replace(UNSUPPORTED_CLAIM, "")).split())


@dataclass(frozen=True)
class SectionChange:
    key: str
    title: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: The share of the section that changed: 1 - difflib's ratio over its sentences.
    ratio: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "added": list(self.added),
            "removed": list(self.removed),
            "ratio": self.ratio,
        }


def compare_section(key: str, title: str, before: ParsedReport, after: ParsedReport) -> SectionChange:
    old = sentences(before.sections.get(title, ""))
    new = sentences(after.sections.get(title, ""))
    old_keys = [_comparable(s, before.sources) for s in old]
    new_keys = [_comparable(s, after.sources) for s in new]
    matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
    added: list[str] = []
    removed: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed.extend(_readable(s) for s in old[i1:i2])
        if tag in ("replace", "insert"):
            added.extend(_readable(s) for s in new[j1:j2])
    ratio = 0.0 if not (added or removed) else round(1 - matcher.ratio(), 3)
    return SectionChange(key, title, tuple(added), tuple(removed), ratio)


def _figures_key(value: str) -> tuple[tuple[str, str, Decimal], ...]:
    return tuple((f.kind, f.unit, f.value) for f in find_figures(value))


def _words_key(value: str) -> list[str]:
    for figure in reversed(find_figures(value)):
        value = value[: figure.start] + " " + value[figure.end :]
    words = re.findall(r"[\w-]+", value.casefold())
    return [word for word in words if word not in _HEDGES]


def same_value(before: str | None, after: str | None) -> bool:
    """Two statements of a key fact say the same: equal but for case, spacing and hedges, with
    figures compared as figures (`$12M` is `$12 million`)."""
    if before is None or after is None:
        return before is after
    if " ".join(before.casefold().split()) == " ".join(after.casefold().split()):
        return True
    return _figures_key(before) == _figures_key(after) and _words_key(before) == _words_key(after)


@dataclass(frozen=True)
class FigureChange:
    name: str
    before: KeyFact
    after: KeyFact

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before.value,
            "after": self.after.value,
            "before_sources": [_source_dict(s) for s in self.before.sources],
            "after_sources": [_source_dict(s) for s in self.after.sources],
        }


def _source_dict(source: SourceEntry) -> dict[str, Any]:
    return {"number": source.number, "title": source.title, "url": source.url}


@dataclass(frozen=True)
class ReportChanges:
    """What the later version changed against the earlier one."""

    sections: tuple[SectionChange, ...]
    figures: tuple[FigureChange, ...]
    new_sources: tuple[SourceEntry, ...]
    #: (date, title, source) of the Recent news items whose page the earlier version did not list.
    new_news: tuple[tuple[str, str, SourceEntry], ...]
    #: Added sentences that announce a funding round.
    new_rounds: tuple[str, ...]
    material: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sections": [change.to_dict() for change in self.sections],
            "figures": [change.to_dict() for change in self.figures],
            "new_sources": [_source_dict(s) for s in self.new_sources],
            "new_news": [{"date": d, "title": t, "number": s.number, "url": s.url} for d, t, s in self.new_news],
            "new_rounds": list(self.new_rounds),
            "material": self.material,
            "reasons": list(self.reasons),
        }


def _url_key(source: SourceEntry) -> str:
    return (source.url or f"provided:{source.title}").rstrip("/")


def _has_key_facts(report: ParsedReport) -> bool:
    return bool(_KEY_FACT.search(report.sections.get(SECTIONS[0].title, "")))


def _as_stated_in(report: ParsedReport, label: str, other: ParsedReport) -> KeyFact:
    """`label`'s fact in `report`, comparable with `other`: before the last round's date had a line
    of its own, the Last round line gave it, so against such a version the two lines are one."""
    fact, date = report.facts[label], report.facts[LAST_ROUND_DATE]
    if label == LAST_ROUND and fact.value and date.value and not other.facts[LAST_ROUND_DATE].line:
        sources = tuple(dict.fromkeys(fact.sources + date.sources))
        return KeyFact(label, f"{fact.value}, {date.value}", sources, fact.line)
    return fact


def compare_reports(before_md: str, after_md: str, *, threshold: float) -> ReportChanges:
    """The changes from `before_md` to `after_md`. Material when a key fact changed, a funding
    round appeared, Recent news lists a page the earlier version did not, or a section changed by
    more than `threshold` (the share of its sentences, 0 to 1)."""
    before, after = parse_report(before_md), parse_report(after_md)
    section_changes = [compare_section(s.key, s.title, before, after) for s in SECTIONS]
    changed_sections = tuple(c for c in section_changes if c.added or c.removed)

    # A version without the list (written before it was asked for, or by a model that ignored
    # it) has no key figures to compare: all of them "changing" from unknown would be noise.
    comparable = _has_key_facts(before) and _has_key_facts(after)
    # A label that one version does not list at all (asked for since it was written) is not
    # compared: going from unlisted to stated is no change in the company.
    stated = [
        (label, _as_stated_in(before, label, after), _as_stated_in(after, label, before))
        for label in KEY_FACTS
        if comparable and before.facts[label].line and after.facts[label].line
    ]
    figures = tuple(FigureChange(label, old, new) for label, old, new in stated if not same_value(old.value, new.value))
    known = {_url_key(s) for s in before.sources.values()}
    new_sources = tuple(s for s in after.sources.values() if _url_key(s) not in known)
    old_news = {_url_key(before.sources[n]) for _, _, n in before.news if n in before.sources}
    new_news = tuple(
        (published, title, after.sources[n])
        for published, title, n in after.news
        if n in after.sources and _url_key(after.sources[n]) not in old_news
    )
    old_rounds = {_comparable(s, before.sources) for c in section_changes for s in c.removed if _ROUND.search(s)}
    new_rounds = tuple(
        dict.fromkeys(
            s
            for c in changed_sections
            for s in c.added
            if _ROUND.search(s) and find_figures(s) and _comparable(s, after.sources) not in old_rounds
        )
    )

    reasons = [f"{f.name}: {f.before.value or 'unknown'} → {f.after.value or 'unknown'}" for f in figures]
    round_fact = next((f for f in figures if f.name == LAST_ROUND and f.after.value), None)
    if round_fact is not None:
        reasons.append(f"New funding round: {round_fact.after.value}")
    elif new_rounds:
        reasons.append(f"New funding round: {new_rounds[0]}")
    reasons.extend(f"In the news: {title}" for _, title, _ in new_news)
    reasons.extend(f"{c.title} changed by {round(c.ratio * 100)} %" for c in changed_sections if c.ratio > threshold)
    return ReportChanges(
        sections=changed_sections,
        figures=figures,
        new_sources=new_sources,
        new_news=new_news,
        new_rounds=new_rounds,
        material=bool(reasons),
        reasons=tuple(reasons),
    )
