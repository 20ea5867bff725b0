"""A report while it is written: each finished section rendered as the finished report renders it
(`worker.pipeline.render_section`), the others as placeholders, so that an analyst reads the
Snapshot while the Risks are still being written.

The sections come from the job's checkpoints (one per finished step, in any order: they are
written in parallel) and the sources from its stored research, both read through the job store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from webapp.rendering import heading_anchor, render_report
from worker.models import Job, JobState
from worker.pipeline import PLAN_STEP, SECTIONS, SYNTHESIS_STEP, Checkpoint, render_section
from worker.research import Research
from worker.sources.citations import link_citations, render_sources
from worker.sources.fact_check import FigureCheck

#: The steps a reader reads, in the report's order: the summary, then the eleven sections.
READ_STEPS: tuple[tuple[str, str], ...] = (
    (SYNTHESIS_STEP, "Summary"),
    *((section.key, section.title) for section in SECTIONS),
)
STOPPED_STATES = frozenset({JobState.FAILURE, JobState.REVOKED})


@dataclass(frozen=True)
class LiveSection:
    key: str
    title: str
    anchor: str
    #: The rendered section (its `<h2>` included), or None while it is not written.
    html: str | None
    #: What stands in its place until it is.
    placeholder: str


@dataclass(frozen=True)
class LiveReport:
    sections: list[LiveSection]
    #: The rendered Sources list, known from the research step on: None before (or without
    #: sources), "" when skipped as already on the page.
    sources_html: str | None

    @property
    def written(self) -> list[str]:
        """What the page shows: the finished sections' keys, and "sources" once it lists them."""
        keys = [section.key for section in self.sections if section.html is not None]
        return keys + ["sources"] if self.sources_html is not None else keys


def placeholder_of(key: str, job: Job, done: Collection[str]) -> str:
    """What a section not yet written says about when it will be."""
    if job.state in STOPPED_STATES:
        return "Not written: the report stopped before this section."
    if PLAN_STEP not in done:
        return "Waiting for the plan…"
    if key == SYNTHESIS_STEP and not all(section.key in done for section in SECTIONS):
        return "Written once every section is finished…"
    return "Being written…"


def render_live_section(checkpoint: Checkpoint, title: str, research: Research | None) -> str:
    """One finished step as HTML: the report's Markdown for it, its figure checks' footnotes
    (labelled with its key, so that two sections' footnotes never share an id on one page) and
    its citations as links to their sources, sanitised by `render_report`."""
    check = FigureCheck(research.sources, check_figures=bool(research.sources)) if research is not None else None
    markdown = f"## {title}\n\n{render_section(checkpoint, research=research, check=check)}"
    if check is not None and check.notes:
        markdown += "\n\n" + check.footnotes()
        markdown = markdown.replace("[^check-", f"[^{checkpoint.key}-check-")
    if research is not None:
        markdown = link_citations(markdown, research.sources)
    return render_report(markdown).html


def live_report(
    job: Job,
    checkpoints: Mapping[str, Checkpoint],
    research: Research | None,
    *,
    skip: Collection[str] = (),
) -> LiveReport:
    """The report of `job` as far as it is written. Sections in `skip` (already on the reader's
    page) are not rendered again: their `html` is ""; nor are the sources, if "sources" is."""
    sections = []
    for key, title in READ_STEPS:
        checkpoint = checkpoints.get(key)
        if checkpoint is None:
            html = None
        elif key in skip:
            html = ""
        else:
            html = render_live_section(checkpoint, title, research)
        sections.append(
            LiveSection(
                key=key,
                title=title,
                anchor=heading_anchor(title),
                html=html,
                placeholder=placeholder_of(key, job, checkpoints),
            )
        )
    sources = research.sources if research is not None else ()
    sources_html = None
    if sources:
        sources_html = "" if "sources" in skip else render_report(render_sources(sources)).html
    return LiveReport(sections=sections, sources_html=sources_html)
