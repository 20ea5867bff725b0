"""A report as a Word document (`webapp.word_report`, `/reports/<id>.docx`), read back with python-docx."""

from __future__ import annotations

import io
import re

import docx
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import store_of
from tests.test_changes import FACTS_V1, SOURCES_V1, report
from webapp.word_report import report_docx

FOOTNOTED = "Revenue was $4 million[^check-1] in 2024.\n\n[^check-1]: ⚠ $4 million was not found in source [2]."
NESTED = "- **Bold** and *italic* [2]\n    - a sub-point\n- <script>alert(1)</script>"


def memo() -> str:
    markdown = report(FACTS_V1, SOURCES_V1, extra_snapshot="\n\n" + NESTED)
    return markdown.replace("Acme is a warehouse robotics company [1].", FOOTNOTED)


def headings_of(document: docx.document.Document) -> list[tuple[str, str]]:
    return [(p.style.name, p.text) for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))]


def test_every_heading_table_link_and_the_sources_list_are_in_the_document() -> None:
    text = memo()
    document = docx.Document(io.BytesIO(report_docx(text)))
    headings = headings_of(document)
    assert headings[0] == ("Title", "Acme Robotics: investment memo")
    section_titles = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert [title for style, title in headings if style == "Heading 1"] == section_titles
    assert "Sources" in section_titles and ("Heading 2", "Notes") in headings

    paragraphs = [p.text for p in document.paragraphs]
    sources_at = paragraphs.index("Sources")
    for title, url in SOURCES_V1:  # the numbered Sources list, each with its link
        assert any(p.startswith(title) and url in p for p in paragraphs[sources_at:])
    links = [link.url for p in document.paragraphs for link in p.hyperlinks]
    assert [url for _, url in SOURCES_V1] == [url for url in links if url in dict(map(reversed, SOURCES_V1))]

    bold = [run.text for p in document.paragraphs for run in p.runs if run.bold]
    assert "Stage:" in bold and "Bold" in bold and "Written by" in bold
    assert any(run.italic and run.text == "italic" for p in document.paragraphs for run in p.runs)
    styles = {p.text: p.style.name for p in document.paragraphs}
    assert styles["a sub-point"] == "List Bullet 2"
    assert styles["<script>alert(1)</script>"] == "List Bullet"  # raw HTML stays text
    assert "Three pilot customers in Europe [2]." in paragraphs  # citations as written

    assert "Revenue was $4 million1 in 2024." in paragraphs
    assert "1. ⚠ $4 million was not found in source [2]." in paragraphs  # the footnote, as text
    (table,) = document.tables  # "Written by"
    assert [cell.text for cell in table.rows[0].cells] == ["Step", "Provider", "Model"]
    assert [cell.text for cell in table.rows[1].cells] == ["Plan", "openai", "gpt"]


def test_control_characters_are_dropped_and_only_web_links_are_links() -> None:
    """Text from web pages and a model may hold characters XML cannot (was a 500) and any URL."""
    text = (
        "# Acme\n\nVertical\x0btab, \x01 and \x1f. [bad](javascript:alert(1)) [good](https://acme.example) "
        "[file](file:///etc/passwd) [mail](mailto:ceo@acme.example) [loud](HTTPS://ACME.EXAMPLE/A)"
    )
    document = docx.Document(io.BytesIO(report_docx(text)))
    assert document.paragraphs[1].text == "Verticaltab,  and . bad good file mail loud"
    targets = [rel.target_ref for rel in document.part.rels.values() if rel.reltype.endswith("/hyperlink")]
    assert sorted(targets) == ["HTTPS://ACME.EXAMPLE/A", "https://acme.example"]


def test_the_report_page_and_the_download(app: Flask, api_client: FlaskClient) -> None:
    store = store_of(app)
    job = store.create_job("Acme Robotics", "admin")
    assert api_client.get(f"/reports/{job.id}.docx").status_code == 409  # not written yet
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.mark_succeeded(job.id, report_md=memo(), provider="openai/gpt")

    page = api_client.get(f"/reports/{job.id}").get_data(as_text=True)
    assert f'href="/reports/{job.id}.docx" download>Download .docx</a>' in page
    response = api_client.get(f"/reports/{job.id}.docx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert 'filename="acme-robotics-report.docx"' in response.headers["Content-Disposition"]
    assert headings_of(docx.Document(io.BytesIO(response.data)))[0] == ("Title", "Acme Robotics: investment memo")
    missing = api_client.get("/reports/00000000-0000-0000-0000-000000000000.docx")
    assert missing.status_code == 404 and "error" in missing.get_json()
