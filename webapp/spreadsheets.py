"""A comparison (`webapp.compare.comparison_json`) as a CSV or an XLSX file.

The files hold one row per company, not one column as the page does: a spreadsheet sorts and
filters by column (by stage, by amount raised), and a batch of companies grows downwards as rows,
so this is the layout an analyst can work with. Each fact gets two columns: its value, and its
sources ("[2] https://…", one a line).

Every text cell is written so that no spreadsheet runs it as a formula (OWASP's CSV injection
advice): one that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`;
so does one whose first character after leading spaces or line breaks is one of those, since a
spreadsheet that trims spaces on import (LibreOffice's "Trim spaces", Excel's TRIM on a paste)
would otherwise meet the formula. A report's facts come from web pages and a model, so they are
untrusted input.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NOT_FOUND = "⚠ not found in the cited sources"
NO_FACTS = "— (facts were not kept for this report)"


def spreadsheet_safe(text: str) -> str:
    """`text` as a spreadsheet shows it and never evaluates it. Control characters go first (XML
    cannot hold them, and a spreadsheet that drops them would meet what follows as the start)."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    return "'" + text if text.lstrip().startswith(FORMULA_TRIGGERS) or text.startswith(FORMULA_TRIGGERS) else text


def _value(fact: dict[str, Any]) -> str:
    value = fact["value"] if fact["value"] is not None else "—"
    return f"{value} ({NOT_FOUND})" if fact["found"] is False else value


def _sources(fact: dict[str, Any]) -> str:
    return "\n".join(f"[{s['number']}] {s['url'] or s['title'] + ' (provided)'}" for s in fact["sources"])


def comparison_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """The header and one row per company, every cell escaped (`spreadsheet_safe`)."""
    header = ["Company", "Report"]
    for fact in comparison["facts"]:
        header += [fact["label"], f"{fact['label']} sources"]
    rows = [header]
    for company in comparison["companies"]:
        row = [company["startup"], company["report_url"]]
        if company["facts"] is None:
            row += [NO_FACTS, ""] * len(comparison["facts"])
        else:
            for fact in company["facts"]:
                row += [_value(fact), _sources(fact)]
        rows.append(row)
    return [[spreadsheet_safe(cell) for cell in row] for row in rows]


def comparison_csv(comparison: dict[str, Any]) -> bytes:
    """UTF-8 with a byte order mark, which Excel needs to read it as UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(comparison_rows(comparison))
    return buffer.getvalue().encode("utf-8-sig")


def comparison_xlsx(comparison: dict[str, Any]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Comparison"
    for row in comparison_rows(comparison):
        sheet.append(row)
    for row in sheet.iter_rows():
        for cell in row:
            # openpyxl stores any str starting with "=" as a formula; escaped text never does, and
            # this says so to the file too.
            cell.data_type = "s"
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, company in enumerate(comparison["companies"], start=2):
        sheet.cell(row=index, column=2).hyperlink = company["report_url"]
    sheet.freeze_panes = "B2"  # the header row and the company column stay in view
    for column in sheet.columns:
        sheet.column_dimensions[column[0].column_letter].width = 28
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
