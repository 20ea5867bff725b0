"""What changed between two versions of a report (`worker.changes`), on hand-written reports in the
form the pipeline writes them: sections under `## <title>`, the Snapshot's Key facts, Recent news
and the numbered Sources list."""

from __future__ import annotations

from worker.changes import compare_reports, parse_report, same_value, split_sections
from worker.pipeline import SECTIONS

THRESHOLD = 0.2

SOURCES_V1 = [
    ("Acme Robotics — About", "https://acmerobotics.com/about"),
    ("Acme Robotics raises $12M Series A", "https://news.example/acme-raises"),
    ("Inside Acme Robotics' engineering team", "https://blog.example/acme-team"),
]
# The new version reads one more page, listed first, so every old source has a new number.
SOURCES_V2 = [
    ("Acme Robotics lands $30M Series B", "https://news.example/acme-series-b"),
    *SOURCES_V1,
]

TRACTION = (
    "- Three pilot customers in Europe [2].\n"
    "- Annual recurring revenue of about $4 million [2].\n"
    "- A second factory line is planned [2].\n"
    "- Software updates ship every two weeks [3].\n"
    "- Mean time between failures above 800 hours [3]."
)


def report(
    facts: dict[str, str],
    sources: list[tuple[str, str]],
    *,
    traction: str = TRACTION,
    news: list[tuple[str, str, int]] = (),
    extra_snapshot: str = "",
) -> str:
    """A report as `worker.pipeline.render_markdown` lays it out."""
    bodies = {s.key: f"Nothing new about {s.title.lower()}." for s in SECTIONS}
    key_facts = "\n".join(f"- **{label}:** {value}" for label, value in facts.items())
    bodies["snapshot"] = (
        f"**Key facts**\n\n{key_facts}\n\nAcme Robotics builds picking arms for warehouses [1].{extra_snapshot}"
    )
    bodies["traction"] = traction
    parts = ["# Acme Robotics: investment memo", "*Generated 2026-01-01 10:00 UTC by openai/gpt.*"]
    parts.append("## Summary\n\nAcme is a warehouse robotics company [1].")
    parts.extend(f"## {s.title}\n\n{bodies[s.key]}" for s in SECTIONS)
    items = "\n".join(f"- **{date}**: {title} [{number}]" for date, title, number in news) or "No recent news found."
    parts.append(f"## Recent news\n\n{items}")
    listed = "\n".join(
        f"{n}. {title} — [{url}]({url}) — accessed 2026-01-01" for n, (title, url) in enumerate(sources, 1)
    )
    parts.append(f"## Sources\n\n{listed}")
    parts.append("---\n\n**Written by**\n\n| Step | Provider | Model |\n|---|---|---|\n| Plan | openai | gpt |")
    return "\n\n".join(parts) + "\n"


FACTS_V1 = {
    "Stage": "Series A [2]",
    "Total raised": "$12M [2]",
    "Last round": "Series A, $12M, March 2024 [2]",
    "Head count": "40 [3]",
    "Headquarters": "Austin [3]",
}


def renumbered(facts: dict[str, str]) -> dict[str, str]:
    """The same facts citing the same pages under the new version's numbers (each one up)."""
    return {label: value.replace("[3]", "[4]").replace("[2]", "[3]") for label, value in facts.items()}


def test_sections_are_read_by_their_headings_and_the_footer_is_none_of_them() -> None:
    sections = split_sections(report(FACTS_V1, SOURCES_V1))
    assert [s.title for s in SECTIONS] == [t for t in sections if t in {s.title for s in SECTIONS}]
    assert sections["Sources"].endswith("accessed 2026-01-01")  # the footer is cut off


def test_key_facts_are_parsed_with_their_citations() -> None:
    parsed = parse_report(report({**FACTS_V1, "Head count": "Unknown"}, SOURCES_V1))
    stage = parsed.facts["Stage"]
    assert stage.value == "Series A"
    assert [(s.number, s.url) for s in stage.sources] == [(2, "https://news.example/acme-raises")]
    assert parsed.facts["Head count"].value is None and parsed.facts["Head count"].sources == ()


def test_the_same_report_twice_is_no_change() -> None:
    before = report(FACTS_V1, SOURCES_V1)
    changes = compare_reports(before, before, threshold=THRESHOLD)
    assert changes.to_dict() == {
        "sections": [],
        "figures": [],
        "new_sources": [],
        "new_news": [],
        "new_rounds": [],
        "material": False,
        "reasons": [],
    }


def test_renumbered_citations_of_the_same_pages_are_no_change() -> None:
    before = report(FACTS_V1, SOURCES_V1)
    after = report(
        renumbered(FACTS_V1),
        SOURCES_V2,
        traction=TRACTION.replace("[3]", "[4]").replace("[2]", "[3]"),
    ).replace("[1]", "[2]")
    changes = compare_reports(before, after, threshold=THRESHOLD)
    assert changes.sections == () and changes.figures == ()
    assert [s.url for s in changes.new_sources] == ["https://news.example/acme-series-b"]
    assert changes.material is False  # a new source outside Recent news is not material by itself


def test_a_new_round_and_a_new_head_count_are_material_and_cited() -> None:
    before = report(FACTS_V1, SOURCES_V1)
    facts = {
        **renumbered(FACTS_V1),
        "Stage": "Series B [1]",
        "Total raised": "$42M [1]",
        "Last round": "Series B, $30M, January 2026 [1]",
        "Head count": "55 [1]",
    }
    after = report(
        facts,
        SOURCES_V2,
        traction=TRACTION.replace("[3]", "[4]").replace("[2]", "[3]"),
        news=[("2026-01-05", "Acme Robotics lands $30M Series B", 1)],
        extra_snapshot=" In January 2026 it raised a $30M Series B led by Example Capital [1].",
    )
    after = after.replace("warehouses [1]", "warehouses [2]").replace("company [1]", "company [2]")
    changes = compare_reports(before, after, threshold=THRESHOLD)
    summary = changes.to_dict()

    assert changes.material is True
    head_count = next(f for f in summary["figures"] if f["name"] == "Head count")
    assert head_count == {
        "name": "Head count",
        "before": "40",
        "after": "55",
        "before_sources": [
            {"number": 3, "title": "Inside Acme Robotics' engineering team", "url": "https://blog.example/acme-team"}
        ],
        "after_sources": [
            {"number": 1, "title": "Acme Robotics lands $30M Series B", "url": "https://news.example/acme-series-b"}
        ],
    }
    assert [f["name"] for f in summary["figures"]] == ["Stage", "Total raised", "Last round", "Head count"]
    assert "Head count: 40 → 55" in summary["reasons"]
    assert "New funding round: Series B, $30M, January 2026" in summary["reasons"]
    assert "In the news: Acme Robotics lands $30M Series B" in summary["reasons"]
    assert summary["new_rounds"] == ["In January 2026 it raised a $30M Series B led by Example Capital [1]."]
    assert summary["new_sources"] == [
        {"number": 1, "title": "Acme Robotics lands $30M Series B", "url": "https://news.example/acme-series-b"}
    ]
    assert summary["new_news"] == [
        {
            "date": "2026-01-05",
            "title": "Acme Robotics lands $30M Series B",
            "number": 1,
            "url": "https://news.example/acme-series-b",
        }
    ]
    snapshot = next(s for s in summary["sections"] if s["key"] == "snapshot")
    assert "In January 2026 it raised a $30M Series B led by Example Capital [1]." in snapshot["added"]
    assert all(s["key"] != "traction" for s in summary["sections"])  # the same pages, renumbered


def test_a_round_in_the_prose_alone_is_material() -> None:
    before = report(FACTS_V1, SOURCES_V1)
    after = report(FACTS_V1, SOURCES_V1, extra_snapshot=" It has just closed a $5M seed extension round [2].")
    changes = compare_reports(before, after, threshold=0.9)
    assert changes.material is True
    assert changes.reasons == ("New funding round: It has just closed a $5M seed extension round [2].",)


def test_a_section_rewritten_beyond_the_threshold_is_material_and_below_it_is_not() -> None:
    before = report(FACTS_V1, SOURCES_V1)
    one_line = TRACTION.replace("Three pilot customers", "Four pilot customers")
    changes = compare_reports(before, report(FACTS_V1, SOURCES_V1, traction=one_line), threshold=0.5)
    (traction,) = changes.sections
    assert traction.added == ("Four pilot customers in Europe [2].",)
    assert traction.removed == ("Three pilot customers in Europe [2].",)
    assert 0 < traction.ratio < 0.5 and changes.material is False
    rewritten = "- Revenue has not been disclosed.\n- No customers are named [3]."
    changes = compare_reports(before, report(FACTS_V1, SOURCES_V1, traction=rewritten), threshold=0.5)
    assert changes.material is True and changes.reasons == ("Traction signals changed by 100 %",)


def test_the_same_figure_in_another_notation_is_no_change() -> None:
    assert same_value("$12M", "$12 million")
    assert same_value("about $12M (demo figure)", "$12 million")
    assert same_value("Series A", "series a")
    assert not same_value("$12M", "$30M")
    assert not same_value("40", "55")
    assert not same_value(None, "Series B") and same_value(None, None)


def test_a_version_without_key_facts_has_no_figures_to_compare() -> None:
    # Its facts in prose, not as list lines (a line without bold is a key fact: see test_fact_extraction).
    before = report(FACTS_V1, SOURCES_V1).replace("- **", "").replace(":** ", " is ")
    changes = compare_reports(before, report(FACTS_V1, SOURCES_V1), threshold=0.99)
    assert changes.figures == ()
    assert parse_report(before).facts["Stage"].value is None


def test_lines_added_to_the_key_facts_since_a_version_was_written_are_not_changes() -> None:
    """A version written before Founded, Lead investors, … and the round's own date line were asked
    for, against a new one: nothing changes from unlisted to stated, and the old Last round line
    (name, amount, date) is compared with the new two, in either order."""
    new_facts = {
        **FACTS_V1,
        "Last round": "Series A, $12M [2]",
        "Last round date": "March 2024 [2]",
        "Lead investors": "Example Ventures [2]",
        "Founded": "2021 [1]",
        "Website": "acmerobotics.com [1]",
        "Business model": "Sells picking arms per unit [1]",
    }
    old, new = report(FACTS_V1, SOURCES_V1), report(new_facts, SOURCES_V1)
    assert compare_reports(old, new, threshold=THRESHOLD).figures == ()
    assert compare_reports(new, old, threshold=THRESHOLD).figures == ()

    later = report({**new_facts, "Last round date": "May 2025 [2]"}, SOURCES_V1)
    changes = compare_reports(old, later, threshold=THRESHOLD)
    assert [(f.name, f.after.value) for f in changes.figures] == [("Last round", "Series A, $12M, May 2025")]
    newer = report({**new_facts, "Founded": "2020 [1]", "Head count": "55 [3]"}, SOURCES_V1)
    assert [f.name for f in compare_reports(new, newer, threshold=THRESHOLD).figures] == ["Head count", "Founded"]
