"""The draft of a report being written (`worker.draft`): each finished step's Markdown is what the
finished report has under that step's heading; what a page shows already is not rendered again."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.draft import READ_STEPS, SOURCES, draft_of, needs_research
from worker.pipeline import PLAN_STEP, SECTIONS, SYNTHESIS_STEP, Checkpoint, assemble_report
from worker.research import Research
from worker.sources.citations import Source

TITLES = {**dict(READ_STEPS), PLAN_STEP: "Research plan"}


def checkpoint(key: str, text: str = "", provider: str = "openai") -> Checkpoint:
    """A step's answer as a model writes it: its own title repeated, headings of the report's level."""
    text = text or f"## {TITLES[key]}\n\n## Findings\n\nAbout {key} [1].\n\nSetext\n---\n\nMore."
    return Checkpoint(key=key, text=text, provider=provider, model="gpt-5-mini")


def test_each_sections_markdown_is_the_finished_reports() -> None:
    done = {key: checkpoint(key) for key in (PLAN_STEP, SYNTHESIS_STEP, *(s.key for s in SECTIONS))}
    final = assemble_report("Acme", done, is_demo=False, generated_at=datetime.now(UTC)).markdown
    draft = draft_of(done, None)
    assert [s.key for s in draft.sections] == [SYNTHESIS_STEP, *(s.key for s in SECTIONS)]
    for section in draft.sections:
        assert section.markdown.startswith(f"## {section.title}\n\n### Findings")
        assert section.markdown in final
    assert draft.all_sections_written and draft.notices is None and draft.sources is None


def test_sections_finish_in_any_order_and_those_on_the_page_are_not_rendered_again() -> None:
    done = {PLAN_STEP: checkpoint(PLAN_STEP), "risks": checkpoint("risks"), "team": checkpoint("team")}
    draft = draft_of(done, None, skip={"team"})
    assert draft.planned and not draft.all_sections_written
    assert draft.written == ["team", "risks"]  # in the report's order, whatever the order written
    by_key = {s.key: s.markdown for s in draft.sections}
    assert by_key["team"] == "" and by_key["risks"].startswith("## Risks") and by_key["snapshot"] is None
    assert not draft_of({}, None).planned


def test_the_research_is_needed_only_for_something_new() -> None:
    done = {PLAN_STEP: checkpoint(PLAN_STEP), "risks": checkpoint("risks")}
    assert needs_research(done, set())
    assert needs_research(done, {"risks"})  # the sources are not listed yet
    assert not needs_research(done, {"risks", SOURCES})
    assert needs_research(done, {SOURCES})


def test_citations_link_footnotes_are_the_sections_own_and_the_notices_are_the_reports() -> None:
    research = Research(sources=(Source(1, "Acme raises", "https://news.example/acme", "Raised $5 million.", "web"),))
    done = {
        PLAN_STEP: checkpoint(PLAN_STEP, provider="offline"),
        "traction": checkpoint("traction", "Revenue is $7 million [1]."),
    }
    draft = draft_of(done, research)
    traction = next(s.markdown for s in draft.sections if s.key == "traction")
    assert "[\\[1\\]](https://news.example/acme)" in traction
    assert "[^traction-check-1]" in traction and "[^traction-check-1]: **$7 million**" in traction
    assert draft.sources.startswith("## Sources") and draft.written == ["traction", SOURCES]
    assert any("Demo output" in notice for notice in draft.notices)
    assert any("No sources were searched" in notice for notice in draft.notices)
    assert draft_of(done, research, skip={SOURCES}).sources == ""
