"""A report's key facts read from it as it is assembled (`worker.fact_extraction`): on reports the
real pipeline renders from hand-written steps and sources (figure check and all), and on Markdown
alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from worker.fact_extraction import extract_facts, parse_recommendation
from worker.facts import FACT_FIELDS, Fact, FactSource
from worker.pipeline import KEY_FACTS, PLAN_STEP, SECTIONS, SYNTHESIS_STEP, Checkpoint, assemble_report
from worker.research import Research
from worker.sources.citations import Source

RAISES = Source(
    1,
    "Acme Robotics raises $12M Series A",
    "https://news.example/acme-raises",
    "Acme Robotics, founded in 2021, has raised a $12 million Series A round led by Example Ventures.",
    "web",
)
TEAM = Source(
    2,
    "Inside Acme Robotics' engineering team",
    "https://blog.example/acme-team",
    "Acme Robotics employs 45 people at its headquarters in Austin.",
    "web",
)
ABOUT = Source(3, "Acme Robotics — About", "https://acmerobotics.com/about", "We build picking arms.", "web")
RESEARCH = Research(sources=(RAISES, TEAM, ABOUT), searched=True, company_website="https://acmerobotics.com")

KEY_FACTS_LINES = {
    "Stage": "Series A [1]",
    "Total raised": "$12 million [1]",
    "Last round": "Series A, $12M [1]",
    "Last round date": "Unknown",
    "Lead investors": "Example Ventures [1]",
    "Head count": "60 people [2]",  # the page says 45: not found
    "Headquarters": "Austin [2]",
    "Founded": "2021 [1]",
    "Website": "acmerobotics.com [3]",
    "Business model": "Sells picking arms to logistics operators, per unit plus service [3]",
}
SUMMARY = (
    "Acme Robotics builds picking arms for warehouses [3]. Its Series A is recent [1]. "
    "We recommend to **take a meeting**, to test its pilots [1]."
)


def rendered(
    lines: dict[str, str] = KEY_FACTS_LINES, summary: str = SUMMARY, research: Research | None = RESEARCH
) -> str:
    """The report `worker.pipeline` renders from these steps."""
    facts = "\n".join(f"- **{label}:** {value}" for label, value in lines.items())
    texts = {s.key: f"Nothing about {s.title.lower()}." for s in SECTIONS}
    texts["snapshot"] = f"**Key facts**\n\n{facts}\n\nAcme Robotics builds picking arms [3]."
    texts[PLAN_STEP], texts[SYNTHESIS_STEP] = "The plan.", summary
    done = {key: Checkpoint(key=key, text=text, provider="openai", model="gpt") for key, text in texts.items()}
    generated_at = datetime.now(UTC)
    return assemble_report("Acme Robotics", done, is_demo=False, generated_at=generated_at, research=research).markdown


def by_key(facts: list[Fact]) -> dict[str, Fact]:
    assert [fact.key for fact in facts] == [key for key, _ in FACT_FIELDS]
    return {fact.key: fact for fact in facts}


def test_every_fact_but_the_recommendation_is_a_key_facts_line_the_snapshot_asks_for() -> None:
    assert {label for key, label in FACT_FIELDS if key != "recommendation"} <= set(KEY_FACTS)
    assert all(f"**{label}:**" in SECTIONS[0].brief for label in KEY_FACTS)


def test_facts_are_read_with_their_sources_and_whether_their_figures_were_found() -> None:
    markdown = rendered()
    assert "**60 people**: not found in the cited source [2]." in markdown  # the report's own check
    facts = by_key(extract_facts(markdown, RESEARCH))

    raises = FactSource(1, RAISES.title, RAISES.url)
    assert facts["total_raised"] == Fact("total_raised", "$12 million", (raises,), True)
    assert facts["last_round"] == Fact("last_round", "Series A, $12M", (raises,), True)
    assert facts["founded"] == Fact("founded", "2021", (raises,), True)
    assert facts["head_count"] == Fact("head_count", "60 people", (FactSource(2, TEAM.title, TEAM.url),), False)
    # Nothing to check: no figure in it.
    assert facts["stage"].found is None and facts["stage"].sources == (raises,)
    assert facts["lead_investors"] == Fact("lead_investors", "Example Ventures", (raises,), None)
    assert facts["headquarters"].value == "Austin" and facts["headquarters"].found is None
    assert facts["business_model"].value == "Sells picking arms to logistics operators, per unit plus service"
    # Unknown: no value, no sources.
    assert facts["last_round_date"] == Fact("last_round_date", None)
    # The website the research fixed, with the source read from it.
    assert facts["website"] == Fact("website", "https://acmerobotics.com", (FactSource(3, ABOUT.title, ABOUT.url),))
    assert facts["recommendation"] == Fact("recommendation", "Take a meeting", (raises,), None)


def test_a_figure_without_a_citation_is_not_found_and_a_report_without_sources_checks_nothing() -> None:
    lines = {**KEY_FACTS_LINES, "Total raised": "$12 million"}
    assert by_key(extract_facts(rendered(lines), RESEARCH))["total_raised"].found is False

    unsourced = Research(searched=False)
    facts = by_key(extract_facts(rendered(lines, research=unsourced), unsourced))
    assert facts["total_raised"] == Fact("total_raised", "$12 million", (), None)
    assert facts["website"].value == "acmerobotics.com"  # no website fixed: the report's line


def test_markdown_alone_gives_values_and_sources_but_checks_nothing() -> None:
    facts = by_key(extract_facts(rendered(), None))
    assert facts["head_count"].value == "60 people" and facts["head_count"].found is None
    assert [s.url for s in facts["head_count"].sources] == [TEAM.url]
    # Without research the website is the Key facts' line, with its citation.
    assert facts["website"] == Fact("website", "acmerobotics.com", (FactSource(3, ABOUT.title, ABOUT.url),))


def test_a_report_without_key_facts_or_recommendation_has_every_fact_unknown() -> None:
    markdown = rendered({}, summary="Acme Robotics builds picking arms [3].", research=None)
    facts = extract_facts(markdown, None)
    assert all(fact.value is None and fact.sources == () for fact in facts)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("A fine team. Recommendation: **take a meeting** to test retention.", "Take a meeting"),
        ("A fine team. We recommend taking a first meeting.", "Take a meeting"),
        ("Costs will pass to customers. Recommendation: watch.", "Watch"),
        ("Recommendation: pass, as we would not take a meeting before revenue.", "Pass"),
        ("We would recommend passing for now.", "Pass"),
        ("The team is strong. Keep it on the watch list.", "Watch"),  # no "recommend": the last sentence
        ("The team is strong. The market is small.", None),
        ("Recommendation: not a pass, watch.", "Watch"),
        ("Recommendation: no pass yet — watch the next round.", "Watch"),
        ("We do not recommend passing; take a meeting.", "Take a meeting"),
        ("We don't recommend passing, nor a meeting: watch.", "Watch"),
        ("Recommendation: this is not a pass.", None),
        ("Recommendation: meet the founders before the round closes.", "Take a meeting"),
        ("We recommend a first call with the CEO.", "Take a meeting"),
        ("We recommend scheduling a meeting.", "Take a meeting"),
        ("Recommendation: keep it on our watchlist.", "Watch"),
    ],
)
def test_the_recommendation_is_the_word_after_recommend(summary: str, expected: str | None) -> None:
    assert parse_recommendation(summary)[0] == expected


def test_key_facts_lines_written_otherwise_than_asked_are_read_all_the_same() -> None:
    """A model that moves the colon out of the bold, bolds with underscores or not at all, adds
    spaces or a unit to a label or writes it as one word, bolds (part of) the value or links in
    it, writes "N/A" or "Unknown (why)", or a ⚠ footnote; the first line of a label counts (here
    "Headcount"), and a second Key facts list does not override the first."""
    snapshot = (
        "**Key facts**\n\n"
        "- **Stage**: Series A [1]\n"
        "- Total raised (USD):   $12 million [1]\n"
        "*   __Last round:__ **Series A, $12M** [1]⚠[^unsupported]\n"
        "- **Headcount:** N/A\n"
        "- **Head count:** 45 [1]\n"
        "- **Lead investors:** Unknown (not in the sources) [1]\n"
        "- **Headquarters:** Austin (Texas) [2]\n"
        "- **Founded:** **2021**, in [Austin](https://austin.example) [1]\n"
        "\nAgain:\n\n- **Stage:** Seed\n"
    )
    markdown = f"## Snapshot\n\n{snapshot}\n## Sources\n\n1. Raises — [https://news.example/acme-raises](https://news.example/acme-raises)\n"
    facts = by_key(extract_facts(markdown, None))
    raises = FactSource(1, "Raises", RAISES.url)
    assert facts["stage"] == Fact("stage", "Series A", (raises,))
    assert facts["total_raised"] == Fact("total_raised", "$12 million", (raises,))
    assert facts["last_round"] == Fact("last_round", "Series A, $12M", (raises,))
    assert facts["head_count"] == Fact("head_count", None)
    assert facts["lead_investors"] == Fact("lead_investors", None)
    assert facts["headquarters"].value == "Austin (Texas)"
    assert facts["founded"] == Fact("founded", "2021, in Austin", (raises,))
    assert facts["website"] == Fact("website", None)  # no line for it


def test_the_website_s_sources_are_the_pages_of_its_domain_or_else_its_own_page() -> None:
    blog = Source(4, "Acme blog", "https://www.acmerobotics.com/blog/arms", "Arms.", "web")
    research = Research(sources=(RAISES, TEAM, ABOUT, blog), searched=True, company_website="acmerobotics.com")
    assert [s.number for s in by_key(extract_facts(rendered(research=research), research))["website"].sources] == [3, 4]

    # An address without a registrable domain (the tests' fake web): only the website's own page.
    pages = [Source(n, f"Page {n}", f"http://127.0.0.1:8123/page-{n}", "Text.", "web") for n in (1, 2)]
    research = Research(sources=tuple(pages), searched=True, company_website="http://127.0.0.1:8123/page-2/")
    assert [s.number for s in by_key(extract_facts(rendered(research=research), research))["website"].sources] == [2]


PIECES = st.sampled_from(
    [
        "## Snapshot\n\n",
        "## Summary\n\n",
        "## Sources\n\n",
        "**Key facts**\n\n",
        *(f"- **{label}:** " for label in KEY_FACTS),
        "$12M ",
        "45 people ",
        "2021 ",
        "[1] ",
        "[2–4] ",
        "⚠[^check-1] ",
        "Unknown",
        "We recommend ",
        "take a meeting. ",
        "pass ",
        "1. Title — [https://a.example](https://a.example) — accessed 2026-01-01\n",
        "```\n",
        "\n",
    ]
)


@given(st.lists(st.one_of(PIECES, st.text(max_size=20)), max_size=40))
@hypothesis_settings(max_examples=200, deadline=None)
def test_any_markdown_gives_every_fact_and_never_an_error(pieces: list[str]) -> None:
    """The facts are read as the report is stored: whatever a model wrote, the report is stored."""
    facts = extract_facts("".join(pieces), RESEARCH)
    assert [fact.key for fact in facts] == [key for key, _ in FACT_FIELDS]
