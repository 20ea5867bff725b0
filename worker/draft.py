"""A report while it is written: what its finished steps say so far, in the finished report's own
Markdown (`worker.pipeline.render_section`), for the page that shows each section as soon as it
is finished. Sections finish in any order: they are written in parallel.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from worker.pipeline import PLAN_STEP, SECTIONS, SYNTHESIS_STEP, Checkpoint, render_section, report_notices
from worker.providers.offline import OfflineProvider
from worker.research import Research
from worker.sources.citations import link_citations, render_sources
from worker.sources.fact_check import FigureCheck

#: The steps a reader reads, in the report's order: the summary, then the eleven sections.
READ_STEPS: tuple[tuple[str, str], ...] = (
    (SYNTHESIS_STEP, "Summary"),
    *((section.key, section.title) for section in SECTIONS),
)
#: What a reader's page says it shows already, besides the steps' keys.
SOURCES = "sources"


@dataclass(frozen=True)
class DraftSection:
    key: str
    title: str
    #: The section under its `## ` heading; None while it is not written, "" when skipped (the
    #: reader's page shows it already).
    markdown: str | None


@dataclass(frozen=True)
class Draft:
    sections: list[DraftSection]
    planned: bool
    #: The Sources list; None until the research has read some, "" when skipped.
    sources: str | None
    #: `report_notices`, when the research was read for this draft; None when it was not.
    notices: list[str] | None

    @property
    def written(self) -> list[str]:
        """What a page showing this draft shows: the finished steps, and the sources once listed."""
        keys = [section.key for section in self.sections if section.markdown is not None]
        return keys + [SOURCES] if self.sources is not None else keys

    @property
    def all_sections_written(self) -> bool:
        return all(section.markdown is not None for section in self.sections if section.key != SYNTHESIS_STEP)


def needs_research(checkpoints: Mapping[str, Checkpoint], skip: Collection[str]) -> bool:
    """Whether a draft without `skip` renders anything the research is needed for."""
    return SOURCES not in skip or any(key in checkpoints and key not in skip for key, _ in READ_STEPS)


def section_markdown(checkpoint: Checkpoint, title: str, research: Research | None) -> str:
    """One finished step as the report shows it, with its figure checks' footnotes (labelled with
    its key, so that two sections' footnotes never share an id on one page) and its citations
    as links to their sources."""
    check = FigureCheck(research.sources, check_figures=bool(research.sources)) if research is not None else None
    markdown = f"## {title}\n\n{render_section(checkpoint, research=research, check=check)}"
    if check is not None and check.notes:
        markdown += "\n\n" + check.footnotes()
        markdown = markdown.replace("[^check-", f"[^{checkpoint.key}-check-")
    return link_citations(markdown, research.sources) if research is not None else markdown


def draft_of(checkpoints: Mapping[str, Checkpoint], research: Research | None, *, skip: Collection[str] = ()) -> Draft:
    """The report as far as `checkpoints` go. What is in `skip` is not rendered again."""
    sections = []
    for key, title in READ_STEPS:
        checkpoint = checkpoints.get(key)
        if checkpoint is None:
            markdown = None
        elif key in skip:
            markdown = ""
        else:
            markdown = section_markdown(checkpoint, title, research)
        sections.append(DraftSection(key=key, title=title, markdown=markdown))
    sources = None
    if research is not None and research.sources:
        sources = "" if SOURCES in skip else render_sources(research.sources)
    elif SOURCES in skip:
        sources = ""
    notices = None
    if research is not None:
        is_demo = any(c.provider == OfflineProvider.name for c in checkpoints.values())
        notices = report_notices(is_demo, research)
    return Draft(sections=sections, planned=PLAN_STEP in checkpoints, sources=sources, notices=notices)
