"""The figures of a report's sections, each looked up in the sources its sentence cites.

`FigureCheck` reads one section after another, as the report is assembled from its stored steps
(so a job that was retried or resumed is counted once, from what its report holds). In each
sentence, table row or list item (`worker.sources.sentences`) it finds the figures
(`worker.sources.figures`) and the sources cited. A figure that one of those sources states is
*supported*. One that none states, or that no source backs at all in a factual section, is marked
in place (`⚠` and a footnote: "not found in the cited source") and listed under **Figures to
verify**. An estimate that says how it was made ("we estimate … based on …") may go without a
source: its figures are counted only when a cited source states them. Sentences that lost all
their citations (`UNSUPPORTED_CLAIM`, from `check_citations`) get a footnote of their own.

Supported means stated by a cited source, not true; see `worker.sources.figures` for what is
understood and what is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from worker.sources.citations import (
    UNSUPPORTED_CLAIM,
    Source,
    cited_sources,
    escape_markdown,
    mask_citations,
    split_code_blocks,
)
from worker.sources.figures import Figure, claimed_figures, find_figures, is_estimate, stated_in
from worker.sources.sentences import HEADING, split_units

NOT_FOUND = "not found in the cited source"
MARK = "⚠"
APPENDIX_TITLE = "Figures to verify"


@dataclass(frozen=True)
class FigureCounts:
    checked: int
    supported: int
    unsupported: int


@dataclass(frozen=True)
class FigureToVerify:
    figure: str
    section: str
    #: The sources the sentence cited (none: it cited nothing, or only sources never read).
    cited: tuple[int, ...]
    #: It had citations, all of sources the pipeline never read.
    lost: bool = False


@dataclass
class FigureCheck:
    sources: Sequence[Source]
    #: False when the report has no sources at all: nothing to look figures up in, and the report
    #: says so at the top; only the sentences that lost their citations are marked.
    check_figures: bool = True
    checked: int = 0
    supported: int = 0
    to_verify: list[FigureToVerify] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _stated: dict[int, list[Figure]] = field(default_factory=dict)

    @property
    def counts(self) -> FigureCounts | None:
        if not self.check_figures:
            return None
        return FigureCounts(self.checked, self.supported, len(self.to_verify))

    def check(self, markdown: str, *, section: str, factual: bool = True) -> str:
        """`markdown`, a section's text, with its unsupported figures and claims marked; the
        counts, the list and the footnotes grow with it."""
        return "".join(
            text if is_code else self._check_prose(text, section, factual)
            for is_code, text in split_code_blocks(markdown)
        )

    def _check_prose(self, prose: str, section: str, factual: bool) -> str:
        edits: list[tuple[int, int, str]] = []
        for unit in split_units(prose):
            if unit.kind == HEADING:
                continue
            text = prose[unit.start : unit.end]
            lost = UNSUPPORTED_CLAIM in text
            cited = cited_sources(text, self.sources)
            marks = []
            if self.check_figures:
                estimate = is_estimate(text)
                for figure in claimed_figures(mask_citations(text)):
                    note = self._look_up(figure, cited, section, factual=factual, estimate=estimate, lost=lost)
                    if note:
                        marks.append((unit.start + figure.end, unit.start + figure.end, f" {self._note(note)}"))
            if lost:
                at = unit.start + text.index(UNSUPPORTED_CLAIM)
                if marks:  # the figures' notes say it already
                    edits.append((at - 1 if prose[at - 1] == " " else at, at + len(UNSUPPORTED_CLAIM), ""))
                else:
                    note = "Unsupported: every source this sentence cited was one the pipeline never read."
                    edits.append((at, at + len(UNSUPPORTED_CLAIM), self._note(note)))
            edits.extend(marks)
        for start, end, replacement in sorted(edits, reverse=True):
            prose = prose[:start] + replacement + prose[end:]
        return prose

    def found_in_cited(self, text: str) -> bool | None:
        """Whether every figure `text` (one line or sentence) claims is stated by a source it cites,
        looked up as `check` looks them up but counting nothing: None when there is nothing to
        check (no figure in it, or no sources to check against)."""
        figures = claimed_figures(mask_citations(text)) if self.check_figures else []
        if not figures:
            return None
        cited = cited_sources(text, self.sources)
        return all(any(stated_in(figure, self._figures_of(number)) for number in cited) for figure in figures)

    def _look_up(
        self, figure: Figure, cited: list[int], section: str, *, factual: bool, estimate: bool, lost: bool
    ) -> str | None:
        """Count `figure`; the footnote it needs, or None when it needs none."""
        if any(stated_in(figure, self._figures_of(number)) for number in cited):
            self.checked += 1
            self.supported += 1
            return None
        if estimate or not (cited or factual):
            return None  # an estimate that says how it was made, or an opinion that cites nothing
        self.checked += 1
        self.to_verify.append(FigureToVerify(figure.text, section, tuple(cited), lost=lost and not cited))
        shown = f"**{escape_markdown(figure.text)}**"
        if cited:
            plural = "s" if len(cited) > 1 else ""
            return f"{shown}: {NOT_FOUND}{plural} {_citations(cited)}."
        if lost:
            return f"{shown}: {NOT_FOUND}: the sentence cited only sources the pipeline never read."
        return f"{shown}: {NOT_FOUND}: the sentence cites no source."

    def _figures_of(self, number: int) -> list[Figure]:
        if number not in self._stated:
            text = " ".join(s.excerpt for s in self.sources if s.number == number)
            self._stated[number] = find_figures(text)
        return self._stated[number]

    def _note(self, text: str) -> str:
        self.notes.append(text)
        return f"{MARK}[^check-{len(self.notes)}]"

    def appendix(self) -> str:
        """The "Figures to verify" section; "" when every figure checked was found."""
        if not self.to_verify:
            return ""
        lines = [f"## {APPENDIX_TITLE}", ""]
        for entry in self.to_verify:
            where = f"cited {_citations(entry.cited)}" if entry.cited else "no source cited"
            if entry.lost:
                where = "cited only sources never read"
            lines.append(f"- **{escape_markdown(entry.figure)}** in *{entry.section}*: {NOT_FOUND} ({where}).")
        return "\n".join(lines)

    def footnotes(self) -> str:
        """The footnotes the marks point at, to close the report with."""
        return "\n".join(f"[^check-{n}]: {text}" for n, text in enumerate(self.notes, start=1))


def _citations(numbers: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in numbers)
