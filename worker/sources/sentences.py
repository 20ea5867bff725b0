"""A model's Markdown (outside code blocks) as the units a claim lives in: sentences of paragraphs
and list items, table rows, and headings, each with its place in the text.

Citations belong to the sentence they close, also when they follow its full stop ("… $4M. [3]").
Soft-wrapped lines of a paragraph or a list item are one text; a blank line, a heading, a table
row or a new list item starts another. Not a parser: a sentence that ends in an abbreviation this
module does not know ("approx. Fifty") is taken as two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT, TABLE, HEADING = "text", "table", "heading"

_HEADING = re.compile(r" {0,3}#{1,6}(?:\s|$)")
_TABLE_ROW = re.compile(r"\s*\|")
# A thematic break, or the row under a table's header.
_RULE = re.compile(r"\s*(?:[-*_]\s*){3,}$|\s*\|?(?:\s*:?-{3,}:?\s*\|?)+\s*$")
_LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d{1,9}[.)])\s+|\s*>\s?")
# The end of a sentence: its punctuation, closing quotes or emphasis, and the citations after it.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)*_]*(?:\s*\[\d[\d,;\s–-]*\])*(?=\s+\S)")
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "approx", "inc", "ltd", "corp", "co", "no", "mr", "ms", "mrs", "dr", "st", "jr", "fig"}
)


@dataclass(frozen=True)
class Unit:
    start: int
    end: int
    kind: str


def split_units(prose: str) -> list[Unit]:
    """The units of `prose` (Markdown without fenced code), in order; blank lines, rules and list
    markers belong to none."""
    units: list[Unit] = []
    block: tuple[int, int] | None = None  # the paragraph or list item being read

    def close() -> None:
        nonlocal block
        if block is not None:
            units.extend(_sentences(prose, *block))
            block = None

    offset = 0
    for line in prose.splitlines(keepends=True):
        start, end = offset, offset + len(line.rstrip("\r\n"))
        offset += len(line)
        content = prose[start:end]
        if not content.strip() or _RULE.match(content):
            close()
        elif _HEADING.match(content):
            close()
            units.append(Unit(start, end, HEADING))
        elif _TABLE_ROW.match(content):
            close()
            units.append(Unit(start, end, TABLE))
        elif marker := _LIST_ITEM.match(content):
            close()
            block = (start + marker.end(), end)
        elif block is None:
            block = (start + len(content) - len(content.lstrip()), end)
        else:
            block = (block[0], end)
    close()
    return units


def _sentences(prose: str, start: int, end: int) -> list[Unit]:
    units = []
    for match in _SENTENCE_END.finditer(prose, start, end):
        word = re.search(r"([\w.]*)[.!?]$", prose[start : match.start() + 1])
        before = word.group(1).lower() if word else ""
        if match.group(0)[0] == "." and (before in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)*[a-z]", before)):
            continue  # "e.g.", "U.S.", "J. Doe"
        units.append(Unit(start, match.end(), TEXT))
        start = match.end()
        while start < end and prose[start].isspace():
            start += 1
    if start < end:
        units.append(Unit(start, end, TEXT))
    return units
