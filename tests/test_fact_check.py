"""The figure check over a report's sections: what is marked, what is counted, and that the marks,
the footnotes, the list and the counts always agree."""

from __future__ import annotations

import re

from webapp.rendering import render_report
from worker.sources.citations import UNSUPPORTED_CLAIM, Source, check_citations
from worker.sources.fact_check import NOT_FOUND, FigureCheck, FigureCounts

SOURCES = [
    Source(
        1, "Analyst's notes", None, "The founders say they raised 12 million dollars. We have 40 employees.", "provided"
    ),
    Source(2, "Acme raises", "https://news.example/acme", "Acme, founded in 2021, raised a $12M Series A.", "web"),
    Source(3, "Team page", "https://acme.example/team", "Acme Robotics employs 45 people in Austin.", "web"),
]


def checked(text: str, *, factual: bool = True, check: FigureCheck | None = None) -> tuple[str, FigureCheck]:
    check = check or FigureCheck(SOURCES)
    return check.check(text, section="Snapshot", factual=factual), check


def marks(text: str) -> list[str]:
    return re.findall(r"⚠\[\^check-\d+\]", text)


def test_a_figure_in_its_cited_source_is_supported_in_any_notation() -> None:
    text = "Acme raised $12M [1], or 12,000,000 USD [2], in its Series A in 2021 [2]. It has 45 staff [3]."
    marked, check = checked(text)
    assert marked == text
    assert check.counts == FigureCounts(checked=4, supported=4, unsupported=0)


def test_a_figure_not_in_its_cited_source_is_marked_listed_and_counted() -> None:
    marked, check = checked("Acme raised $15M [2]. It has 40 employees [3], or so the team page says.")
    assert marked == (
        "Acme raised $15M ⚠[^check-1] [2]. It has 40 employees ⚠[^check-2] [3], or so the team page says."
    )
    assert check.notes == [f"**$15M**: {NOT_FOUND} [2].", f"**40 employees**: {NOT_FOUND} [3]."]
    assert [(e.figure, e.section, e.cited) for e in check.to_verify] == [
        ("$15M", "Snapshot", (2,)),
        ("40 employees", "Snapshot", (3,)),
    ]
    assert check.counts == FigureCounts(checked=2, supported=0, unsupported=2)
    assert check.appendix().splitlines() == [
        "## Figures to verify",
        "",
        f"- **$15M** in *Snapshot*: {NOT_FOUND} (cited [2]).",
        f"- **40 employees** in *Snapshot*: {NOT_FOUND} (cited [3]).",
    ]


def test_a_figure_is_looked_up_only_in_the_sources_its_own_sentence_cites() -> None:
    """The notes say 40 employees, but this sentence cites the team page, which says 45."""
    marked, check = checked("Acme raised $12M [2]. It has 40 employees [3].")
    assert marks(marked) == ["⚠[^check-1]"] and check.to_verify[0].figure == "40 employees"


def test_an_uncited_figure_in_a_factual_section_is_marked_and_in_an_opinion_it_is_not() -> None:
    marked, check = checked("The company has 300 customers.")
    assert marked == "The company has 300 customers ⚠[^check-1]."
    assert check.notes == [f"**300 customers**: {NOT_FOUND}: the sentence cites no source."]
    assert check.appendix().endswith(f"- **300 customers** in *Snapshot*: {NOT_FOUND} (no source cited).")

    marked, check = checked("It could reach $100M in revenue by 2030.", factual=False)
    assert marked == "It could reach $100M in revenue by 2030." and check.counts.checked == 0
    marked, check = checked("Acme raised $15M [2], which is plenty.", factual=False)  # cited: checked all the same
    assert marks(marked) and check.counts.unsupported == 1


def test_an_estimate_that_says_how_it_was_made_needs_no_source() -> None:
    text = "We estimate the SAM at $2B, based on 40,000 warehouses paying $50k a year each."
    marked, check = checked(text)
    assert marked == text and check.counts.checked == 0
    # Its inputs count as supported where a cited source states them; its result is not marked.
    marked, check = checked("We estimate $540k a year, based on 45 staff [3] at $12k each.")
    assert marks(marked) == [] and (check.counts.checked, check.counts.supported) == (1, 1)
    # Saying "estimated" without how is not enough.
    marked, _ = checked("The market is an estimated $9B.")
    assert marks(marked) == ["⚠[^check-1]"]


def test_a_sentence_that_lost_its_citations_gets_a_footnote_and_its_figures_say_why() -> None:
    text, removed = check_citations("Revenue tripled [9]. Acme raised $30M [8]. Acme raised $12M [2].", SOURCES)
    assert removed == 2 and text.count(UNSUPPORTED_CLAIM) == 2
    marked, check = checked(text)
    assert marked == "Revenue tripled ⚠[^check-1]. Acme raised $30M ⚠[^check-2]. Acme raised $12M [2]."
    assert check.notes[0].startswith("Unsupported:")
    assert check.notes[1] == f"**$30M**: {NOT_FOUND}: the sentence cited only sources the pipeline never read."
    assert "(cited only sources never read)" in check.appendix()
    assert (check.counts.checked, check.counts.unsupported) == (2, 1)  # the claim is not a figure


def test_tables_lists_code_and_headings() -> None:
    text = (
        "### Funding in 2020\n\n"
        "| Round | Amount | Source |\n|---|---|---|\n| Series A | $12M | [2] |\n| Seed | $3M | [2] |\n\n"
        "- 45 employees [3]\n- 900 customers\n\n"
        "```\nraised $99M [2]\n```\n"
    )
    marked, check = checked(text)
    assert "### Funding in 2020\n" in marked  # a heading states no claim
    assert "| Seed | $3M ⚠[^check-1] | [2] |" in marked and "| Series A | $12M | [2] |" in marked
    assert "- 900 customers ⚠[^check-2]\n" in marked
    assert "```\nraised $99M [2]\n```\n" in marked  # code is not prose
    assert check.counts == FigureCounts(checked=4, supported=2, unsupported=2)


def test_footnotes_are_numbered_across_sections_and_render_as_footnotes() -> None:
    check = FigureCheck(SOURCES)
    first = check.check("Acme raised $15M [2].", section="Snapshot")
    second = check.check("It has 300 customers.", section="Traction signals")
    assert marks(first) == ["⚠[^check-1]"] and marks(second) == ["⚠[^check-2]"]
    assert [e.section for e in check.to_verify] == ["Snapshot", "Traction signals"]
    html = render_report(f"## Snapshot\n\n{first}\n\n## Traction\n\n{second}\n\n{check.footnotes()}\n").html
    assert html.count('<sup id="fnref:check-') == 2
    assert f"<strong>$15M</strong>: {NOT_FOUND} [2]." in html and 'id="fn:check-2"' in html


def test_without_sources_figures_are_not_checked_but_lost_citations_still_show() -> None:
    check = FigureCheck([], check_figures=False)
    text = check_citations("Acme raised $15M [2]. Acme has 300 customers.", [])[0]
    marked = check.check(text, section="Snapshot")
    assert marked == "Acme raised $15M ⚠[^check-1]. Acme has 300 customers."
    assert check.counts is None and check.appendix() == ""
