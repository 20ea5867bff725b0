"""What every text the pipeline reads is cleaned of before it is stored or shown to a model.

A PDF's text layer, a web page and pasted notes can all carry characters that are not text: LaTeX
PDFs yield NUL bytes (which PostgreSQL's text columns refuse), ligatures come out as one glyph
(`ﬁ` for "fi"), and symbol fonts map glyphs to the Private Use Area, which means nothing outside
the font. `clean_text` removes them in one place, `worker.research.gather_research`'s `add`, where
every source is numbered.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters (C0, DEL, C1) other than tab and line feed; a carriage return becomes a line
# feed first. Private-use code points, and lone surrogates (a broken UTF-16 pair, which no database
# driver can encode).
_NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\U000f0000-\U0010ffff\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"\r\n?")


def clean_text(text: str) -> str:
    """`text` NFKC-normalised (ligatures and compatibility forms become the letters they show:
    `misﬁts` → `misfits`), with control characters other than line breaks and tabs, private-use
    characters and lone surrogates removed."""
    return unicodedata.normalize("NFKC", _NOT_TEXT.sub("", _LINE_BREAKS.sub("\n", text)))
