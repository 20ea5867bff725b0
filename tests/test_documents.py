"""PDF text extraction in a child process with limits, on PDFs written by hand in
tests/fakes/pdf_builder.py (each test starts the real child)."""

from __future__ import annotations

import io
import logging

import pytest
from pypdf import PdfReader, PdfWriter

from tests.fakes.pdf_builder import minimal_pdf, shared_stream_bomb
from worker.sources.documents import MB, Limits, Reading, read_pdf

SENTENCE = "Acme Robotics reached 4 million dollars of annual recurring revenue in 2024."


def encrypted(data: bytes, *, user_password: str, algorithm: str = "RC4-128") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_known_sentence_comes_out() -> None:
    data = minimal_pdf([[SENTENCE, "Gross margin (blended) was 38%."]])
    reading = read_pdf(data, Limits(max_pages=10, max_chars=10_000))
    assert SENTENCE in reading.text
    assert "Gross margin (blended) was 38%." in reading.text
    assert reading.problem is None


def test_pages_past_max_pages_are_not_read() -> None:
    data = minimal_pdf([["First page."], ["Second page."], ["Third page."]])
    text = read_pdf(data, Limits(max_pages=2, max_chars=10_000)).text
    assert "First page." in text and "Second page." in text
    assert "Third page." not in text


def test_text_is_capped_to_max_chars() -> None:
    data = minimal_pdf([[SENTENCE] * 20, [SENTENCE] * 20])
    assert len(read_pdf(data, Limits(max_pages=10, max_chars=100)).text) <= 100


@pytest.mark.parametrize(
    "data", [b"", b"Hello, this is a text file.", b"<html><body>not a pdf</body></html>", b"\x89PNG\r\n\x1a\n"]
)
def test_a_file_that_is_not_a_pdf_is_refused(data: bytes) -> None:
    assert read_pdf(data) == Reading("", "The file is not a PDF.")


def test_a_pdf_without_text_is_refused() -> None:
    reading = read_pdf(minimal_pdf([[], []]))
    assert reading.text == "" and "no extractable text" in reading.problem


@pytest.mark.parametrize("cut", [60, 200])
def test_a_damaged_pdf_is_refused(cut: int) -> None:
    data = minimal_pdf([[SENTENCE]])
    reading = read_pdf(data[:cut])
    assert reading.text == "" and "damaged" in reading.problem


def test_a_pdf_that_needs_a_password_is_refused() -> None:
    data = encrypted(minimal_pdf([[SENTENCE]]), user_password="open-sesame")
    assert read_pdf(data) == Reading("", "The PDF is encrypted: upload a copy without a password.")


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_a_pdf_with_only_an_owner_password_is_read(algorithm: str) -> None:
    """Restrictions on printing or copying do not stop reading: the user password is empty. AES
    needs the cryptography package (requirements.in)."""
    data = encrypted(minimal_pdf([[SENTENCE]]), user_password="", algorithm=algorithm)
    assert read_pdf(data) == Reading(SENTENCE)


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_an_aes_pdf_that_needs_a_password_is_refused_as_one(algorithm: str) -> None:
    data = encrypted(minimal_pdf([[SENTENCE]]), user_password="open-sesame", algorithm=algorithm)
    assert read_pdf(data) == Reading("", "The PDF is encrypted: upload a copy without a password.")


BOMB_PAGES = 16


def bomb(inflated_mb: int) -> bytes:
    """A readable first page, then pages that all inflate one shared stream (a few KB on disk)."""
    return shared_stream_bomb(BOMB_PAGES, inflated_bytes=inflated_mb * MB, first_page=SENTENCE)


def test_a_page_past_the_decompression_cap_stops_the_reading_and_keeps_the_pages_before() -> None:
    data = bomb(70)
    assert len(data) < 300 * 1024
    reading = read_pdf(data, Limits(page_bytes=4 * MB))
    assert reading.text == SENTENCE
    assert reading.problem == "too large to read after 1 page."


def test_the_whole_document_has_a_decompression_cap_too() -> None:
    """Each page under the page cap (2 MB), but four of them (and the first) pass the 7 MB cap."""
    # Inflating 7 MB takes seconds on a loaded machine: the time limit is not what is tested here.
    limits = Limits(page_bytes=4 * MB, document_bytes=7 * MB, max_chars=10**9, seconds=120)
    reading = read_pdf(bomb(2), limits)
    assert reading.text.startswith(SENTENCE) and reading.text.count("Bomb") > 1000
    assert reading.problem == "too large to read after 4 pages."


def test_a_reading_past_its_time_keeps_the_pages_read_and_says_so() -> None:
    """The child is killed at the deadline; the pages it wrote before are kept."""
    reading = read_pdf(bomb(3), Limits(seconds=2, max_chars=10**9))
    assert reading.text.startswith(SENTENCE)
    assert reading.problem is not None and reading.problem.startswith("took more than 2 s to read, so only its first")


def test_a_reading_past_its_memory_stops_with_the_pages_read() -> None:
    reading = read_pdf(bomb(3), Limits(memory_bytes=100 * MB))
    assert reading.text == SENTENCE
    assert reading.problem == "needed more than 100 MB of memory to read, so only its first page is used."


def test_the_text_is_cleaned_of_control_and_private_use_characters_and_ligatures_are_letters() -> None:
    """As a LaTeX PDF's text layer comes out: NUL bytes, ligature glyphs, a symbol font's
    private-use code point."""
    line = "The mis\x80ts of Acme\x00 sell \x81robots\x07 to the o\x82ce."
    data = minimal_pdf([[line]], glyphs={0x80: "fi", 0x81: "uniE000", 0x82: "ffi"})
    assert read_pdf(data) == Reading("The misfits of Acme sell robots to the office.")


@pytest.mark.parametrize(
    "lines",
    [
        ["... --- ... *** ,,, ;;; ___ ... ---", "\x95 " * 10],  # \x95: WinAnsi bullets
        ["Confidential Confidential Confidential", "Confidential Confidential"],
        ["Draft draft DRAFT 1 2 3 4 5 6"],
    ],
)
def test_a_text_layer_that_is_not_words_is_no_extractable_text(lines: list[str]) -> None:
    reading = read_pdf(minimal_pdf([lines]))
    assert reading.text == "" and "no extractable text" in reading.problem


@pytest.mark.parametrize(
    "line", ["Acme sells robots.", "Revenue 2023 2024 | 1,200,000 | 4,000,000 | Gross margin 38% 41%"]
)
def test_a_short_sentence_or_a_table_of_figures_is_text(line: str) -> None:
    assert read_pdf(minimal_pdf([[line]])) == Reading(line)


def test_pypdf_warnings_are_logged_once_per_document_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    """A damaged cross-reference makes pypdf warn as it repairs it; the child counts its warnings."""
    data = minimal_pdf([[SENTENCE]]).replace(b"startxref\n", b"startxref\n9")
    with caplog.at_level(logging.INFO, logger="worker.sources.documents"):
        assert read_pdf(data) == Reading(SENTENCE)
    [record] = [r for r in caplog.records if r.name == "worker.sources.documents"]
    assert record.getMessage().startswith("reading a PDF: 2 warnings, the first: pypdf._reader: incorrect startxref")
