"""The page of a report while it is written: the job's draft (`worker.draft`, through the job
API) rendered as the finished report is, sanitised by `render_report`, and a placeholder for each
section not yet written, so that an analyst reads the Snapshot while the Risks are still being
written."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.rendering import heading_anchor, render_report
from worker.draft import Draft
from worker.models import Job, JobState
from worker.pipeline import SYNTHESIS_STEP

STOPPED_STATES = frozenset({JobState.FAILURE, JobState.REVOKED})


@dataclass(frozen=True)
class LiveSection:
    key: str
    title: str
    anchor: str
    #: The rendered section (its `<h2>` included); None while it is not written, "" when the
    #: page shows it already.
    html: str | None
    #: What stands in its place until it is written.
    placeholder: str


@dataclass(frozen=True)
class LiveReport:
    sections: list[LiveSection]
    #: The Sources list; None until the research has read some, "" when the page shows it already.
    sources_html: str | None
    #: The demo, no-search and warning notices; None when they were not read for this answer.
    notices_html: str | None
    #: What the page shows once this is on it: the next poll's `shown`.
    shown: str


def placeholder_of(key: str, job: Job, draft: Draft) -> str:
    """What a section not yet written says about when it will be."""
    if job.state in STOPPED_STATES:
        return "Not written: the report stopped before this section."
    if not draft.planned:
        return "Waiting for the plan…"
    if key == SYNTHESIS_STEP and not draft.all_sections_written:
        return "Written once every section is finished…"
    return "Being written…"


def _html(markdown: str | None) -> str | None:
    return render_report(markdown).html if markdown else markdown


def live_report(job: Job, draft: Draft) -> LiveReport:
    """`draft` as the page shows it: each section rendered (or its placeholder), and what the
    page then shows, for its next poll."""
    sections = [
        LiveSection(
            key=section.key,
            title=section.title,
            anchor=heading_anchor(section.title),
            html=_html(section.markdown),
            placeholder=placeholder_of(section.key, job, draft),
        )
        for section in draft.sections
    ]
    notices = None if draft.notices is None else _html("\n\n".join(draft.notices)) or ""
    return LiveReport(
        sections=sections, sources_html=_html(draft.sources), notices_html=notices, shown=",".join(draft.written)
    )
