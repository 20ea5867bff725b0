"""Report Markdown to safe HTML.

A provider's output is untrusted input. Raw HTML in the Markdown is not interpreted at all: it is
shown as text. The HTML that Markdown makes then goes through nh3 with a short allow-list anyway,
so no script, event handler, style, `javascript:` or `data:` link survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import unescape

import markdown
import nh3
from markdown.extensions.toc import slugify_unicode

ALLOWED_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "pre", "code",
    "ul", "ol", "li", "strong", "em", "b", "i", "del", "sup", "sub", "small", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    # Footnotes ("fn:check-1", "fnref:check-1"): the figure check's notes, and a model's own.
    "sup": {"id"},
    "li": {"id"},
    "th": {"align"},
    "td": {"align"},
    **{f"h{n}": {"id"} for n in range(1, 7)},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class TocEntry:
    anchor: str
    title: str


@dataclass(frozen=True)
class RenderedReport:
    html: str
    toc: list[TocEntry]


def _slug(value: str, separator: str) -> str:
    # A prefix keeps heading ids from clashing with the page's own element ids.
    return "sec-" + slugify_unicode(value, separator)


def heading_anchor(title: str) -> str:
    """The id `render_report` gives a `## ` heading of this title (the table of contents links it)."""
    return _slug(title, "-")


def render_report(text: str) -> RenderedReport:
    """Render a report; its first `# ` title is left out (the page shows its own header)."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        text = "\n".join(lines[1:])
    md = markdown.Markdown(
        extensions=["tables", "sane_lists", "fenced_code", "toc", "footnotes"],
        extension_configs={"toc": {"slugify": _slug, "toc_depth": "2"}},
        output_format="html",
    )
    # Treat raw HTML (blocks and inline tags) as text: "<script>" in a report shows as written.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    # No reference definitions: a model's "[2]: https://…" would link a citation ("[2]") to it.
    md.parser.blockprocessors.deregister("reference")
    raw_html = md.convert(text)
    html = nh3.clean(
        raw_html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    toc = [TocEntry(anchor=t["id"], title=unescape(t["name"])) for t in getattr(md, "toc_tokens", [])]
    return RenderedReport(html=html, toc=toc)


INLINE_TAGS = {"strong", "em", "b", "i", "code", "del", "a"}


def render_inline(text: str) -> str:
    """One sentence of a report (as the changes view lists them) as inline HTML: its emphasis and
    links rendered, as in the report, rather than shown as `**` and brackets; block structure and
    raw HTML are not kept."""
    md = markdown.Markdown(output_format="html")
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return nh3.clean(
        md.convert(text),
        tags=INLINE_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    ).strip()
