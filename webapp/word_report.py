"""A report as a Word document (python-docx), for `/reports/<id>.docx`.

The Markdown is read by python-markdown, as the report page reads it (`webapp.rendering`), and
the HTML it makes is walked with lxml: headings become Word headings (the title `#` the document's
title, `##` Heading 1 and so on), tables Word tables, lists list paragraphs, links (the citations'
and the Sources list's) hyperlinks, and footnotes a numbered "Notes" list at the end.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import markdown
from docx import Document as new_document
from docx.document import Document
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import RGBColor
from docx.text.paragraph import Paragraph
from docx.text.run import Run
from lxml import html as lxml_html
from lxml.html import HtmlElement
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

HEADINGS = {f"h{n}": n - 1 for n in range(1, 7)}  # "#" is the title (level 0), "##" Heading 1
LINK_COLOUR = RGBColor(0x2F, 0x6F, 0xDE)
#: A report's links come from web pages and a model: only web addresses become clickable in Word
#: (not javascript:, file: or mailto:); any other link is kept as its text.
LINK_SCHEMES = {"http", "https"}


def report_docx(text: str) -> bytes:
    """The Markdown report `text` as the bytes of a .docx file."""
    md = markdown.Markdown(extensions=["tables", "sane_lists", "fenced_code", "footnotes"], output_format="html")
    # Raw HTML in a provider's Markdown is text, as on the page: never markup.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    # Control characters (a model's or a web page's stray \x0b) cannot be in XML: python-docx
    # refuses them, so they are dropped, as the spreadsheets drop them.
    body = md.convert(ILLEGAL_CHARACTERS_RE.sub("", text))
    document = new_document()
    if body.strip():
        for element in lxml_html.fragment_fromstring(body, create_parent="div"):
            _block(document, element)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _block(document: Document, element: HtmlElement, list_depth: int = 0) -> None:
    tag = element.tag
    if tag in HEADINGS:
        heading = document.add_heading(level=HEADINGS[tag])
        _inline(heading, element)
    elif tag == "p":
        _inline(document.add_paragraph(), element)
    elif tag in ("ul", "ol"):
        _list(document, element, list_depth)
    elif tag == "table":
        _table(document, element)
    elif tag == "blockquote":
        for child in element:
            if child.tag == "p":
                _inline(document.add_paragraph(style="Quote"), child)
            else:
                _block(document, child, list_depth)
    elif tag == "pre":
        run = document.add_paragraph().add_run(element.text_content().rstrip("\n"))
        run.font.name = "Courier New"
    elif tag == "div" and "footnote" in element.get("class", ""):
        _footnotes(document, element)
    elif tag == "hr":
        return
    else:  # anything else the converter makes: its text, so nothing is lost
        text = element.text_content().strip()
        if text:
            document.add_paragraph(text)


def _list(document: Document, element: HtmlElement, depth: int) -> None:
    kind = "List Number" if element.tag == "ol" else "List Bullet"
    style = kind if depth == 0 else f"{kind} {min(depth + 1, 3)}"
    for item in element.iterchildren("li"):
        paragraph = document.add_paragraph(style=style)
        # An item is inline content or (in a loose list) paragraphs; its sub-lists follow it.
        _inline(paragraph, item, skip=("ul", "ol"))
        for sub in item.xpath("ul|ol"):
            _list(document, sub, depth + 1)


def _table(document: Document, element: HtmlElement) -> None:
    rows = element.findall(".//tr")
    if not rows:
        return
    columns = max(len(row.findall("th") + row.findall("td")) for row in rows)
    table = document.add_table(rows=len(rows), cols=columns)
    table.style = "Table Grid"
    for row, tr in zip(table.rows, rows, strict=True):
        for cell, source in zip(row.cells, tr.xpath("th|td"), strict=False):
            paragraph = cell.paragraphs[0]
            _inline(paragraph, source, bold=source.tag == "th")


def _footnotes(document: Document, element: HtmlElement) -> None:
    document.add_heading("Notes", level=2)
    for number, item in enumerate(element.iter("li"), start=1):
        for backref in item.xpath(".//a[contains(@class, 'footnote-backref')]"):
            backref.drop_tree()  # the "↩" back to the text, and the no-break space before it
        for paragraph_element in item.iter("p"):
            if len(paragraph_element):
                paragraph_element[-1].tail = (paragraph_element[-1].tail or "").rstrip()
            else:
                paragraph_element.text = (paragraph_element.text or "").rstrip()
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{number}. ")
        for child in item:
            _inline(paragraph, child)


def _inline(
    paragraph: Paragraph,
    element: HtmlElement,
    *,
    bold: bool = False,
    italic: bool = False,
    skip: tuple[str, ...] = (),
) -> None:
    """The text of `element` and its children as runs of `paragraph`, with emphasis and links."""
    if element.text:
        _run(paragraph, element.text, bold=bold, italic=italic)
    for child in element:
        if child.tag in skip:
            pass
        elif child.tag in ("strong", "b"):
            _inline(paragraph, child, bold=True, italic=italic)
        elif child.tag in ("em", "i"):
            _inline(paragraph, child, bold=bold, italic=True)
        elif child.tag == "a" and urlsplit(child.get("href", "")).scheme.lower() in LINK_SCHEMES:
            _hyperlink(paragraph, child.get("href"), child.text_content())
        elif child.tag == "sup":  # a footnote's reference
            _run(paragraph, child.text_content(), bold=bold, italic=italic).font.superscript = True
        elif child.tag == "code":
            _run(paragraph, child.text_content(), bold=bold, italic=italic).font.name = "Courier New"
        elif child.tag == "br":
            paragraph.add_run().add_break()
        elif child.tag == "p":  # a loose list item's paragraphs run on in one list paragraph
            if paragraph.text:
                paragraph.add_run(" ")
            _inline(paragraph, child, bold=bold, italic=italic)
        else:
            _inline(paragraph, child, bold=bold, italic=italic)
        if child.tail:
            _run(paragraph, child.tail, bold=bold, italic=italic)


def _run(paragraph: Paragraph, text: str, *, bold: bool, italic: bool) -> Run:
    run = paragraph.add_run(text)
    run.bold = bold or None
    run.italic = italic or None
    return run


def _hyperlink(paragraph: Paragraph, url: str, text: str) -> None:
    """A clickable link: python-docx reads hyperlinks but has no call to add one, so this is its
    XML (a `w:hyperlink` around a run, pointing at an external relationship)."""
    relationship = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), relationship)
    run = paragraph.add_run(text)
    run.font.color.rgb = LINK_COLOUR
    run.font.underline = True
    link.append(run._r)
    paragraph._p.append(link)
