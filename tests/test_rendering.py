"""Report Markdown to HTML: tables and headings kept, anything executable gone."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from webapp.rendering import render_inline, render_report

REPORT = """# Acme: investment memo

## Summary

Worth a meeting.

## Competition

| Competitor | Scale |
|---|---|
| Northwind | Series C |
"""


def test_headings_tables_and_contents() -> None:
    rendered = render_report(REPORT)
    assert "<h1" not in rendered.html  # the page shows its own title
    assert '<h2 id="sec-summary">Summary</h2>' in rendered.html
    assert "<table>" in rendered.html and "<td>Northwind</td>" in rendered.html
    assert [(t.anchor, t.title) for t in rendered.toc] == [
        ("sec-summary", "Summary"),
        ("sec-competition", "Competition"),
    ]


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parsed_tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="https://x" onclick="alert(1)">x</a>',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "![pixel](https://tracker.example/p.png)",
        '<iframe src="https://evil.example"></iframe>',
        "<style>body{display:none}</style>",
        '<div style="position:fixed">x</div>',
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
        "<IMG SRC=JaVaScRiPt:alert('XSS')>",
        "<body onload=alert(1)>",
        "<<script>script>alert(1)<</script>/script>",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        '<a href="  javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        "[x](<javascript:alert(1)>)",
        "[x]( javascript:alert(1))",
        "[x][evil]\n\n[evil]: javascript:alert(1)",
        "<javascript:alert(1)>",
        '<img src="x" style="background:url(javascript:alert(1))">',
        "<details open ontoggle=alert(1)>",
        '<a href="vbscript:msgbox(1)">x</a>',
        "<img src=x onerror=alert(1)//",
        '<form action="javascript:alert(1)"><button>x</button></form>',
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
        "<base href='https://evil.example/'>",
        "`<script>alert(1)</script>`",
        "```html\n<script>alert(1)</script>\n```",
    ],
)
def test_nothing_executable_survives(markdown: str) -> None:
    tags = parsed_tags(render_report(f"## Section\n\n{markdown}\n").html)
    assert tags, "the section heading at least must be there"
    for tag, attrs in tags:
        assert tag in {"h2", "p", "a", "code", "pre"}, tag
        assert not any(name.startswith("on") or name == "style" for name in attrs), attrs
        href = attrs.get("href")
        assert href is None or href.startswith(("http://", "https://", "mailto:")), href


def test_raw_html_is_shown_as_text() -> None:
    html = render_report("## S\n\nWe saw <script>alert(1)</script> in a deck.\n").html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html


def test_safe_links_are_kept_and_marked() -> None:
    html = render_report("## S\n\nSee [the site](https://acme.example/about).\n").html
    assert 'href="https://acme.example/about"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_a_model_s_reference_definition_does_not_turn_a_citation_into_its_own_link() -> None:
    """`[2]` cites the analyst's notes (no page, so no link); a model writing `[2]: https://…`
    must not make it a link to a page of its choosing."""
    html = render_report("## S\n\nAcme has 40 staff [2].\n\n[2]: https://evil.example/\n").html
    assert "<a" not in html and "[2]" in html


def test_a_changed_sentence_renders_inline_as_the_report_does() -> None:
    assert render_inline("**Head count:** 55 [4]") == "<strong>Head count:</strong> 55 [4]"
    assert render_inline("1. *Series B*, see [the post](https://acme.example/b)") == (
        '<em>Series B</em>, see <a href="https://acme.example/b" rel="noopener noreferrer nofollow">the post</a>'
    )
    assert render_inline("<script>alert(1)</script> [x](javascript:alert(2))") == (
        '&lt;script&gt;alert(1)&lt;/script&gt; <a rel="noopener noreferrer nofollow">x</a>'
    )
