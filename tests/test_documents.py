"""PDF text extraction, on PDFs written by hand in tests/fakes/pdf_builder.py."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from tests.fakes.pdf_builder import minimal_pdf
from worker.sources.documents import DocumentError, pdf_text

SENTENCE = "Acme Robotics reached 4 million dollars of annual recurring revenue in 2024."


def encrypted(data: bytes, *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    # RC4, which pypdf handles without the optional cryptography package.
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_known_sentence_comes_out() -> None:
    data = minimal_pdf([[SENTENCE, "Gross margin (blended) was 38%."]])
    text = pdf_text(data, max_pages=10, max_chars=10_000)
    assert SENTENCE in text
    assert "Gross margin (blended) was 38%." in text


def test_pages_past_max_pages_are_not_read() -> None:
    data = minimal_pdf([["First page."], ["Second page."], ["Third page."]])
    text = pdf_text(data, max_pages=2, max_chars=10_000)
    assert "First page." in text and "Second page." in text
    assert "Third page." not in text


def test_text_is_capped_to_max_chars() -> None:
    data = minimal_pdf([[SENTENCE] * 20, [SENTENCE] * 20])
    assert len(pdf_text(data, max_pages=10, max_chars=100)) <= 100


@pytest.mark.parametrize(
    "data", [b"", b"Hello, this is a text file.", b"<html><body>not a pdf</body></html>", b"\x89PNG\r\n\x1a\n"]
)
def test_a_file_that_is_not_a_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(DocumentError, match="not a PDF"):
        pdf_text(data, max_pages=10, max_chars=1000)


def test_a_pdf_without_text_is_refused() -> None:
    with pytest.raises(DocumentError, match="no extractable text"):
        pdf_text(minimal_pdf([[], []]), max_pages=10, max_chars=1000)


@pytest.mark.parametrize("cut", [60, 200])
def test_a_damaged_pdf_is_refused(cut: int) -> None:
    data = minimal_pdf([[SENTENCE]])
    with pytest.raises(DocumentError, match="damaged"):
        pdf_text(data[:cut], max_pages=10, max_chars=1000)


def test_a_pdf_that_needs_a_password_is_refused() -> None:
    data = encrypted(minimal_pdf([[SENTENCE]]), user_password="open-sesame")
    with pytest.raises(DocumentError, match="encrypted"):
        pdf_text(data, max_pages=10, max_chars=1000)


def test_a_pdf_with_only_an_owner_password_is_read() -> None:
    """Restrictions on printing or copying do not stop reading: the user password is empty."""
    data = encrypted(minimal_pdf([[SENTENCE]]), user_password="")
    assert SENTENCE in pdf_text(data, max_pages=10, max_chars=1000)
