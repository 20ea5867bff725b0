"""Text from a PDF an analyst uploaded or a link led to, with pypdf.

pypdf is pure Python: no poppler to install on the workers. It reads the text layer only, so a
scanned document without one is reported as such rather than passed on empty.
"""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

#: A PDF header may follow a little junk; readers look for it within the first KiB.
HEADER_WINDOW = 1024


class DocumentError(Exception):
    """The file is not a PDF we can read. `str(error)` says why, in words for the analyst."""


def pdf_text(data: bytes, *, max_pages: int, max_chars: int) -> str:
    """The text of the first `max_pages` pages, at most `max_chars` characters.

    A PDF encrypted with an empty user password (an "owner password" that only restricts
    printing or copying) is read like any other; one that needs a password to open is refused.
    """
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        raise DocumentError("The file is not a PDF.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("The PDF is encrypted: upload a copy without a password.")
        parts: list[str] = []
        length = 0
        for page in reader.pages[:max_pages]:
            text = (page.extract_text() or "").strip()
            if text:
                parts.append(text)
                length += len(text) + 2
            if length >= max_chars:
                break
    except FileNotDecryptedError:
        raise DocumentError("The PDF is encrypted: upload a copy without a password.") from None
    except (DependencyError, NotImplementedError):  # AES needs the optional cryptography package
        raise DocumentError("The PDF uses an encryption we cannot read: upload a copy without it.") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise DocumentError(f"The PDF is damaged and cannot be read ({type(exc).__name__}).") from None
    text = "\n\n".join(parts).strip()
    if not text:
        raise DocumentError("The PDF has no extractable text (a scan without a text layer?).")
    return text[:max_chars].rstrip()
