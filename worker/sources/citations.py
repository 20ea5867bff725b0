"""Numbered sources, the citations a model writes to them, and the checks that keep it honest.

A model given sources 1–5 may still cite [7] or link a URL it made up. `check_citations` removes
those, and only those: Markdown that is not a citation (checkboxes, footnotes, anchors, code,
tables) stays exactly as it was. A sentence that loses every citation it had is no longer a sourced
claim: it is marked `UNSUPPORTED_CLAIM` (or dropped, when it was nothing but a pointer to a
source), and what is left around a removal reads as a sentence. The sources list and the prompt
excerpts are built here too, so the numbers a model sees, the numbers it cites and the numbers a
reader looks up are the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from worker.sources.base import cap_text, normalise_url
from worker.sources.sentences import HEADING, TABLE, split_units


@dataclass(frozen=True)
class Source:
    number: int
    title: str
    #: None for what the analyst provided (pasted notes, an uploaded PDF).
    url: str | None
    excerpt: str
    #: "web", "provided", or "news" (a dated news search result, listed in the Recent news section).
    kind: str
    #: The date the page (or the search result) says it was published: an ISO date when it could
    #: be read, else as the page wrote it.
    published: str | None = None
    #: The date the page was read (ISO date), for the sources list.
    accessed: str | None = None
    #: Published longer before it was read than SOURCE_MAX_AGE_DAYS: marked *old* in the list.
    old: bool = False


# A fenced code block opens with ``` or ~~~ (indented at most three spaces) and closes with a
# fence of the same character at least as long (CommonMark); an unclosed one runs to the end.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")

# Everything check_citations looks at in prose, in one pass so that nothing is matched twice (a
# link's URL is not also a bare URL). `lead` is the space before the match, dropped with it.
_DIGITS = r"\s*\d{1,3}(?:\s*[-–]\s*\d{1,3})?\s*"
_TOKEN = re.compile(
    rf"""
    (?P<lead>(?<=\S)[ \t]+)?
    (?:
        (?P<code>(?P<ticks>`+)[\s\S]*?(?<!`)(?P=ticks)(?!`))
      | (?P<link>!?\[(?P<text>[^\]\n]*)\]\(\s*<?(?P<href>[^\s)>]*)>?(?:\s+(?:"[^"\n]*"|'[^'\n]*'))?\s*\))
      | <(?P<autolink>https?://[^\s<>]+)>
      | \((?P<parenthesised>https?://[^\s()<>]+)\)
      | (?P<bare>https?://[^\s<>()\[\]`"']+)
      | (?<!\\)\[(?P<numbers>{_DIGITS}(?:[,;]{_DIGITS})*)\](?!\()
    )
    """,
    re.VERBOSE,
)
# Punctuation that ends a sentence rather than the bare URL it follows.
_URL_TRAILERS = ".,;:!?*_~'\""
# A range wider than this is not a citation anyone wrote on purpose; its ends are checked alone.
_LONGEST_RANGE = 50

#: What a sentence whose citations were all removed carries instead: a footnote reference that
#: the report's assembly (`worker.sources.fact_check`) numbers and explains.
UNSUPPORTED_CLAIM = "⚠[^unsupported]"
# Where something was removed, until the sentence around it is settled.
_REMOVED = "\x00"
# Words left pointing at nothing once what followed them is gone: "…, see [removed]." or "and [removed].".
_DANGLING = re.compile(
    r"[,;:]?[ \t]*\b(?:see\s+also|see|also|and|or|at|via|from|per|cf\.?|in|on|here|as|sources?|according\s+to)"
    rf"\b[ \t]*:?[ \t]*{_REMOVED}(?=[ \t]*(?:[.,;:!?)]|{_REMOVED}|$))",
    re.IGNORECASE,
)
# What joined a removed citation to the next one: "[8], [9] and [1]".
_JOINER = re.compile(rf"{_REMOVED}[ \t]*(?:,|;|and\b|or\b)[ \t]*(?={_REMOVED}|\[\d)", re.IGNORECASE)
# A sentence that was only a pointer to a source ("See https://….", "Source: [9].").
_POINTER = re.compile(r"(?:see\b|sources?\s*:|for\s+more\b|more\s+at\b|read\s+more\b)", re.IGNORECASE)


def url_key(url: str) -> str:
    """What two URLs must share to count as the same source: `normalise_url`, ignoring http versus
    https and a leading www."""
    key = normalise_url(url).split("://", 1)[-1]
    return key.removeprefix("www.")


def _cited_numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"[,;]", group):
        ends = [int(n) for n in re.findall(r"\d+", part)]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= _LONGEST_RANGE:
            numbers.extend(range(ends[0], ends[1] + 1))
        else:
            numbers.extend(ends)
    return numbers


def split_code_blocks(markdown: str) -> list[tuple[bool, str]]:
    """The document as (is_code, text) pieces, fenced code blocks apart from prose."""
    pieces: list[tuple[bool, str]] = []
    prose: list[str] = []
    code: list[str] = []
    fence = ""
    for line in markdown.splitlines(keepends=True):
        if fence:
            code.append(line)
            closing = _FENCE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                if not line.strip().strip(fence[0]):
                    pieces.append((True, "".join(code)))
                    code, fence = [], ""
            continue
        opening = _FENCE.match(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in line[opening.end() :]):
            if prose:
                pieces.append((False, "".join(prose)))
                prose = []
            fence = opening.group(1)
            code.append(line)
            continue
        prose.append(line)
    if prose:
        pieces.append((False, "".join(prose)))
    if code:
        pieces.append((True, "".join(code)))
    return pieces


def check_citations(markdown: str, sources: Sequence[Source]) -> tuple[str, int]:
    """`markdown` without citations of numbers that are not among `sources`, and without links and
    bare URLs to pages that are not theirs; and how many of those were removed.

    - `[7]` goes; in a group (`[1, 7]`, `[1-3]`), only the invalid numbers go. Citations are one to
      three digits, so a year in brackets (`[2024]`) is left alone.
    - `[text](https://invented)` becomes `text`; `<https://invented>`, `(https://invented)` and a
      bare `https://invented` go. Links that are not absolute http(s) URLs (`#anchor`, `/path`,
      `mailto:`) are not web sources and stay.
    - A sentence (or table row) left with none of its citations gets `UNSUPPORTED_CLAIM` before
      its full stop (in a row: where the citation was); one that was only a pointer ("See
      https://invented.") goes. Words left dangling ("…, see." "… and.") and the spaces around
      a removal go too.
    - Fenced code blocks and code spans are not touched; nor is anything else.
    """
    numbers = {source.number for source in sources}
    urls = {url_key(source.url) for source in sources if source.url}
    removed = 0

    def known(url: str) -> bool:
        return url_key(url) in urls

    def replace(match: re.Match[str]) -> str:
        nonlocal removed
        lead = match.group("lead") or ""
        if match.group("code") is not None:
            return match.group(0)
        if match.group("link") is not None:
            href = match.group("href")
            if not href.lower().startswith(("http://", "https://", "//")) or known(href.removeprefix("//")):
                return match.group(0)
            removed += 1
            return lead + match.group("text") + _REMOVED
        url = match.group("autolink") or match.group("parenthesised")
        if url is not None:
            if known(url):
                return match.group(0)
            removed += 1
            return _REMOVED
        bare = match.group("bare")
        if bare is not None:
            trailer = bare[len(bare.rstrip(_URL_TRAILERS)) :]
            url = bare[: len(bare) - len(trailer)]
            if known(url):
                return match.group(0)
            removed += 1
            return _REMOVED + trailer
        cited = _cited_numbers(match.group("numbers"))
        valid = [number for number in cited if number in numbers]
        if len(valid) == len(cited):
            return match.group(0)
        removed += len(cited) - len(valid)
        return f"{lead}[{', '.join(str(number) for number in valid)}]" if valid else _REMOVED

    cleaned = [text if is_code else _settle(_TOKEN.sub(replace, text)) for is_code, text in split_code_blocks(markdown)]
    return "".join(cleaned), removed


def cited_numbers(markdown: str) -> set[int]:
    """The source numbers `markdown` cites as `[n]`, outside code: what a checked text rests on."""
    cited: set[int] = set()
    for is_code, text in split_code_blocks(markdown):
        if not is_code:
            for match in _TOKEN.finditer(text):
                if match.group("numbers") is not None:
                    cited.update(_cited_numbers(match.group("numbers")))
    return cited


def renumber_citations(markdown: str, numbers: Mapping[int, int]) -> str:
    """`markdown` citing each source by its number in `numbers` (old: new), for a text kept while
    its sources were numbered anew (`worker.rerun`); a group's range becomes its list. A number not
    in `numbers` becomes 0, which no source has, for `check_citations` to remove. Code is not
    touched, nor is anything but a citation."""

    def renumber(match: re.Match[str]) -> str:
        if match.group("numbers") is None:
            return match.group(0)
        cited = [numbers.get(number, 0) for number in _cited_numbers(match.group("numbers"))]
        return f"{match.group('lead') or ''}[{', '.join(str(number) for number in cited)}]"

    return "".join(text if is_code else _TOKEN.sub(renumber, text) for is_code, text in split_code_blocks(markdown))


def _settle(prose: str) -> str:
    """`prose` with the places where citations were removed settled: each sentence, row or heading
    that lost something is tidied, and marked or dropped when nothing cites it any more."""
    if _REMOVED not in prose:
        return prose
    for unit in reversed(split_units(prose)):
        text = prose[unit.start : unit.end]
        if _REMOVED not in text:
            continue
        start, end = unit.start, unit.end
        settled = _settle_unit(text, unit.kind)
        if settled is None:  # the whole line goes when the sentence was all of it
            line_start = prose.rfind("\n", 0, start) + 1
            line_end = prose.find("\n", end)
            line_end = len(prose) if line_end < 0 else line_end
            if not prose[end:line_end].strip() and _is_list_marker(prose[line_start:start]):
                start, end, settled = line_start, min(line_end + 1, len(prose)), ""
            else:
                settled = ""
                while end < len(prose) and prose[end] in " \t":
                    end += 1
        prose = prose[:start] + settled + prose[end:]
    return prose.replace(_REMOVED, "")


def _is_list_marker(text: str) -> bool:
    return not text.strip() or bool(re.fullmatch(r"\s*(?:[-*+]|\d{1,9}[.)]|>)\s*", text))


def _settle_unit(text: str, kind: str) -> str | None:
    """One unit that lost citations: tidied, marked, or None when it should go."""
    while (tidier := _JOINER.sub(_REMOVED, _DANGLING.sub(_REMOVED, text))) != text:
        text = tidier
    text = re.sub(rf"\b(see(?:\s+also)?)[ \t]*{_REMOVED}[ \t]+(?:and|or)\b", rf"\1{_REMOVED}", text, flags=re.I)
    text = re.sub(rf"\(\s*(?:{_REMOVED}\s*)+\)", _REMOVED, text)
    if kind == HEADING or cited_sources(text.replace(_REMOVED, " "), None):
        return _tidy(text)
    if kind == TABLE:
        at = text.rfind(_REMOVED)
        return _tidy(text[:at] + " " + UNSUPPORTED_CLAIM + text[at:])
    text = _tidy(text)
    if not re.search(r"[^\W_]", text) or _POINTER.match(text.lstrip("*_ ")) and "](" not in text:
        return None
    end = re.search(r"[.!?]?[\"'”’)*_]*$", text)
    return f"{text[: end.start()]} {UNSUPPORTED_CLAIM}{text[end.start() :]}"


def _tidy(text: str) -> str:
    """The removal marks gone, with the spaces around them: none before punctuation, one between words."""
    text = re.sub(rf"^[ \t]*(?:{_REMOVED}[ \t]*)+|(?<=\]){_REMOVED}+(?=\[)", "", text)
    text = re.sub(rf"[ \t]*(?:{_REMOVED}[ \t]*)+(?=[.,;:!?)\]]|$)", "", text)
    text = re.sub(rf"(?<=\S)[ \t]*(?:{_REMOVED}[ \t]*)+(?=\S)", " ", text)
    return text.replace(_REMOVED, "")


def cited_sources(text: str, sources: Sequence[Source] | None) -> list[int]:
    """The numbers of the sources `text` cites, by number or by a link to their page, in order and
    once each. With `sources` None, any number cited and any web link (as `-1`) count."""
    numbers = None if sources is None else {source.number for source in sources}
    by_url = {} if sources is None else {url_key(s.url): s.number for s in sources if s.url}
    cited: list[int] = []
    for match in _TOKEN.finditer(text):
        if match.group("numbers") is not None:
            found = _cited_numbers(match.group("numbers"))
            cited.extend(n for n in found if numbers is None or n in numbers)
            continue
        url = match.group("href") or match.group("autolink") or match.group("parenthesised") or match.group("bare")
        if url and url.lower().startswith(("http://", "https://")):
            number = -1 if sources is None else by_url.get(url_key(url.rstrip(_URL_TRAILERS)))
            if number is not None:
                cited.append(number)
    return list(dict.fromkeys(cited))


def mask_citations(text: str) -> str:
    """`text` with its citations, code spans and URLs blanked out (same length, so positions hold),
    and link texts kept: what is left is the prose a reader reads."""

    def blank(match: re.Match[str]) -> str:
        if match.group("link") is not None:
            start = match.start("text") - match.start()
            kept = match.group("text")
            whole = match.group(0)
            return " " * start + kept + " " * (len(whole) - start - len(kept))
        return " " * len(match.group(0))

    return _TOKEN.sub(blank, text)


def escape_markdown(text: str) -> str:
    """Text that Markdown shows as written: no accidental emphasis, links or HTML."""
    text = " ".join(text.split())
    # `<` has no backslash escape in Markdown; as an entity it shows as itself, and starts no tag.
    return re.sub(r"([\\`*_\[\]>#])", r"\\\1", text).replace("<", "&lt;")


def _href(url: str) -> str:
    """A URL safe inside Markdown's `(…)`: parentheses, spaces and angle brackets encoded."""
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def link_citations(markdown: str, sources: Sequence[Source]) -> str:
    """`markdown` with each cited number a link to its source's page: `[1, 3]` becomes
    `[\\[1\\]](…)[\\[3\\]](…)`. A number of a source without a page (the analyst's own
    material) stays as text; code is not touched."""
    urls = {source.number: source.url for source in sources if source.url}

    def link(match: re.Match[str]) -> str:
        group = match.group("numbers")
        if group is None or not any(number in urls for number in _cited_numbers(group)):
            return match.group(0)
        links = (
            f"[\\[{number}\\]]({_href(urls[number])})" if number in urls else f"\\[{number}\\]"
            for number in _cited_numbers(group)
        )
        return (match.group("lead") or "") + "".join(links)

    return "".join(text if is_code else _TOKEN.sub(link, text) for is_code, text in split_code_blocks(markdown))


def render_sources(sources: Sequence[Source]) -> str:
    """The "## Sources" section: one numbered item per source, with its link (or a note that the
    analyst provided it) and the dates it was published and read. "" when there are none.

    Markdown renumbers an ordered list from its first number, so when the numbers are not 1…n the
    items are written as numbered lines instead, which keep their numbers.
    """
    if not sources:
        return ""
    ordered = sorted(sources, key=lambda source: source.number)
    contiguous = [source.number for source in ordered] == list(range(1, len(ordered) + 1))
    lines = ["## Sources", ""]
    for source in ordered:
        title = escape_markdown(source.title) or "Untitled"
        if source.url:
            item = f"{title} — [{escape_markdown(source.url)}]({_href(source.url)})"
        else:
            item = f"{title} (provided by the analyst)"
        dates = []
        if source.published:
            dates.append(f"published {escape_markdown(source.published)}{' (*old*)' if source.old else ''}")
        if source.accessed:
            # A news item is the search's result, not a page read: say which it was.
            read = "found by the news search" if source.kind == "news" else "accessed"
            dates.append(f"{read} {escape_markdown(source.accessed)}")
        if dates:
            item += f" — {', '.join(dates)}"
        if contiguous:
            lines.append(f"{source.number}. {item}")
        else:
            lines.extend([f"{source.number}\\. {item}", ""])
    return "\n".join(lines).rstrip() + "\n"


def format_for_prompt(sources: Sequence[Source], max_chars_per_source: int) -> str:
    """The sources as a model should see them: numbered, each excerpt inside its own
    `<source number="n">` block, cut to `max_chars_per_source`.

    The blocks mark where untrusted page text starts and ends; a page that writes `</source>`
    itself has it defused, so it cannot end its block early and pose as instructions.
    """
    blocks = []
    for source in sorted(sources, key=lambda source: source.number):
        header = [f"Title: {_defuse(' '.join(source.title.split()))}"]
        header.append(f"URL: {source.url}" if source.url else "Provided by the analyst (no URL).")
        if source.published:
            header.append(f"Published: {_defuse(source.published)}")
        excerpt = _defuse(cap_text(source.excerpt, max_chars_per_source))
        blocks.append(f'<source number="{source.number}">\n' + "\n".join(header) + f"\n\n{excerpt}\n</source>")
    return "\n\n".join(blocks)


def _defuse(text: str) -> str:
    return re.sub(r"<(/?)(source)", r"‹\1\2", text, flags=re.IGNORECASE)
