"""What every text the pipeline reads is cleaned of (worker/sources/text.py)."""

from __future__ import annotations

import pytest

from worker.sources.text import clean_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("mis\ufb01ts", "misfits"),
        ("e\ufb00ort, o\ufb03ce", "effort, office"),
        ("Ａｃｍｅ²", "Acme2"),
        ("a\x00b\x07c\x1bd\x7fe\x85f", "abcdef"),
        ("keeps\tand\nlines", "keeps\tand\nlines"),
        ("windows\r\nand old mac\rbreaks", "windows\nand old mac\nbreaks"),
        ("symbol\ue000font\U000f0001", "symbolfont"),
        ("broken\ud800pair", "brokenpair"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
