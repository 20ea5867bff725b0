"""A CSV of companies as a batch for the dashboard: what is queued, and what is wrong with each
row that is not.

The file needs a header row naming its columns: `name` (required), `website` and `notes`
(optional), in any order and any case. Other columns (a sector, an owner) are ignored, and the
page says which, since spreadsheets carry more columns than we need. Each row is checked as the
form checks one startup (`webapp.validation`): a bad row is named with its row number and the
reason and is not queued; the good rows are. A file of more than a batch's rows (good or bad)
is refused before its rows are checked, so that no file answers with thousands of messages.
UTF-8, with or without the byte order mark Excel writes, or the UTF-16 of Excel's "Unicode Text";
commas, the semicolons that Excel writes in many European locales, or tabs.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from webapp.validation import MAX_BATCH, ValidationError, validate_notes, validate_startup, validate_website
from worker.models import startup_key
from worker.research import Material

MAX_CSV_BYTES = 1024 * 1024  # 50 companies with long notes fit many times over
COLUMNS = ("name", "website", "notes")
SNIFF_CHARS = 1024  # a header row's names fit many times over; sniffing 1 KB takes milliseconds
NOT_TEXT = "The file is not a CSV (it is not text). Save the sheet as CSV UTF-8 and try again."


@dataclass(frozen=True)
class CompanyRow:
    row: int  # as a spreadsheet numbers it: the header is row 1
    name: str
    material: Material


@dataclass
class CompanyImport:
    companies: list[CompanyRow] = field(default_factory=list)
    #: One sentence per row that is not queued, e.g. "Row 4: the name is empty."
    problems: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    blank_rows: int = 0

    @property
    def note(self) -> str:
        """Says what was left out on purpose, or nothing."""
        notes = []
        if self.ignored_columns:
            notes.append(
                f"Ignored the column{'s' if len(self.ignored_columns) > 1 else ''} {', '.join(self.ignored_columns)}."
            )
        if self.blank_rows:
            notes.append(f"Skipped {self.blank_rows} blank row{'s' if self.blank_rows != 1 else ''}.")
        return " ".join(notes)


def _rows_of(data: bytes) -> Iterator[list[str]]:
    """The file's rows, or a `ValidationError` when it is not a CSV we can read."""
    if len(data) > MAX_CSV_BYTES:
        raise ValidationError(f"The CSV file is larger than the {MAX_CSV_BYTES // 1024} KB an import may be.")
    # Excel's "Unicode Text" is UTF-16 with a byte order mark (and tabs): its NUL bytes are text.
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    if encoding == "utf-8-sig" and b"\x00" in data:
        raise ValidationError(NOT_TEXT)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise ValidationError("The CSV file is not UTF-8 text. Save the sheet as “CSV UTF-8” and try again.") from None
    if "\x00" in text:
        raise ValidationError(NOT_TEXT)
    # The delimiter is told by the header row's first characters only: csv.Sniffer's regular
    # expressions take time quadratic in their input (a 150 KB crafted header took minutes).
    header_line = io.StringIO(text, newline="").readline()[:SNIFF_CHARS]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(header_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # one column: nothing to tell the delimiter by
    try:
        yield from csv.reader(io.StringIO(text, newline=""), dialect)
    except csv.Error as exc:
        raise ValidationError(f"The file is not a readable CSV ({exc}).") from None


def _problem(row: int, exc: ValidationError, column: str, value: str) -> str:
    if column == "website":
        shown = value.strip() if len(value.strip()) <= 80 else value.strip()[:80] + "…"
        return f"Row {row}: website {shown!r} is not a web address such as https://acme.example."
    message = str(exc).replace('"startup"', "the name").replace('"notes"', "the notes")
    return f"Row {row}: {message}"


def read_companies(data: bytes) -> CompanyImport:
    """The companies of a CSV file, and its bad rows; a `ValidationError` when the file as a whole
    cannot be used (not a CSV, no `name` column, no company, more than a batch may hold)."""
    rows = _rows_of(data)
    first = next(rows, None)
    if first is None:
        raise ValidationError(
            "The CSV file is empty: it needs a header row with a “name” column, then one company a row."
        )
    header = [cell.strip().lower() for cell in first]
    if "name" not in header:
        raise ValidationError(
            "The CSV file has no “name” column: its first row must name the columns (name, and optionally "
            "website and notes)."
        )
    index = {column: header.index(column) for column in COLUMNS if column in header}
    result = CompanyImport(
        ignored_columns=[cell for cell in first if cell.strip().lower() not in COLUMNS and cell.strip()]
    )
    seen: dict[str, int] = {}
    listed = 0
    for number, cells in enumerate(rows, start=2):
        if not any(cell.strip() for cell in cells):
            result.blank_rows += 1
            continue
        listed += 1
        if listed > MAX_BATCH:
            # Before reading on: a file of many thousand bad rows would be as many messages.
            raise ValidationError(
                f"The CSV file lists more than the {MAX_BATCH} companies a batch may hold (bad rows count too). "
                "Split it into smaller files."
            )
        values = {column: cells[i] if i < len(cells) else "" for column, i in index.items()}
        try:
            name = validate_startup(values["name"])
        except ValidationError as exc:
            result.problems.append(_problem(number, exc, "name", values["name"]))
            continue
        try:
            website = validate_website(values.get("website", ""))
        except ValidationError as exc:
            result.problems.append(_problem(number, exc, "website", values["website"]))
            continue
        try:
            notes = validate_notes(values.get("notes", ""))
        except ValidationError as exc:
            result.problems.append(_problem(number, exc, "notes", values["notes"]))
            continue
        key = startup_key(name)
        if key in seen:
            result.problems.append(f"Row {number}: {name} is already on row {seen[key]}.")
            continue
        seen[key] = number
        result.companies.append(CompanyRow(number, name, Material(website=website, notes=notes)))
    if not result.companies and not result.problems:
        raise ValidationError("The CSV file lists no company: add one name a row under the header.")
    return result
