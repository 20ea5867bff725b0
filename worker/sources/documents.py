"""Text from a PDF an analyst uploaded or a link led to, with pypdf, read in a child process.

pypdf is pure Python: no poppler to install on the workers. It reads the text layer only, so a
scanned document without one is reported as such rather than passed on empty.

A small PDF can hold a great deal of work: pages that share one Flate stream inflating to 70 MB
cost pypdf about 9 s each, and a few such files took one process to 900 MB. So a PDF is never
read in the process that asked: `read_pdf` runs `python -m worker.sources.documents` with a
wall-clock limit, an address-space limit and caps on the decompressed content per page and per
document. The child writes each page's text as it goes, so whatever limit ends it, the pages
read before it are kept, and the reading says which limit stopped it and where.

The text is cleaned (`worker.sources.text.clean_text`) and must read as words (`reads_as_words`):
a text layer of symbols or of one repeated word is "no extractable text", like a scan. pypdf's
warnings (a damaged font can yield hundreds) are counted in the child and logged once per document.
"""

from __future__ import annotations

import io
import json
import logging
import re
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from worker.sources.text import clean_text

logger = logging.getLogger(__name__)

#: A PDF header may follow a little junk; readers look for it within the first KiB.
HEADER_WINDOW = 1024
MB = 1024 * 1024
#: Where `python -m worker.sources.documents` finds the `worker` package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: A PDF's text reads as words when letters and digits are at least this share of its non-space
#: characters (a table of figures passes, a page of dots and dashes does not)...
MIN_ALPHANUMERIC_SHARE = 0.5
#: ...and it holds at least this many different words of two letters or more ("Acme sells robots."
#: does; "Draft Draft Draft Draft", a watermark, does not).
MIN_DISTINCT_WORDS = 3
_WORD = re.compile(r"[^\W\d_]{2,}")
NO_TEXT = "The PDF has no extractable text (a scan without a text layer?)."
NOT_WORDS = "The PDF has no extractable text: what its text layer holds is not words (symbols, or one word repeated)."


@dataclass(frozen=True)
class Limits:
    """How much of a PDF is read, and what one reading may cost."""

    max_pages: int = 60
    max_chars: int = 60_000
    seconds: float = 20.0
    #: The child's address space: Python and pypdf take about 60 MB of it before the first page.
    memory_bytes: int = 512 * MB
    #: Decompressed content of one page: a 40-page deck holds well under 1 MB a page.
    page_bytes: int = 4 * MB
    #: Decompressed content of all the pages read.
    document_bytes: int = 24 * MB


@dataclass(frozen=True)
class Reading:
    """The text read from a PDF, and why reading stopped early or found nothing (None when every
    page up to the limits was read). Both may be set: the pages before the problem are kept."""

    text: str
    problem: str | None = None


def looks_like_pdf(data: bytes) -> bool:
    """The cheap check a web request can afford: the header, not the content."""
    return b"%PDF-" in data[:HEADER_WINDOW]


def read_pdf(data: bytes, limits: Limits = Limits()) -> Reading:  # noqa: B008 (frozen, so shared safely)
    """The text of the first pages of `data`, read in a child process within `limits`."""
    if not looks_like_pdf(data):
        return Reading("", "The file is not a PDF.")
    command = [sys.executable, "-m", "worker.sources.documents", json.dumps(asdict(limits))]
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as child:
        try:
            out, err = child.communicate(data, timeout=limits.seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            timed_out = True
    pages, problem, warnings = _parse(out)
    if warnings:
        logger.info("reading a PDF: %s", warnings)
    if timed_out:
        problem = f"took more than {limits.seconds:g} s to read, " + _so_far(len(pages))
    elif problem is None and child.returncode != 0:
        ending = err.decode(errors="replace")[-2000:]  # the traceback's end says what went wrong
        logger.warning("reading a PDF ended with exit status %s: %s", child.returncode, ending)
        problem = "could not be read to the end, " + _so_far(len(pages))
    text = clean_text("\n\n".join(page for page in pages if page)).strip()[: limits.max_chars].rstrip()
    if text and not reads_as_words(text):
        text, problem = "", problem or NOT_WORDS
    if not text and problem is None:
        problem = NO_TEXT
    return Reading(text, problem)


def reads_as_words(text: str) -> bool:
    """Whether `text` is words rather than symbols or one word repeated: `MIN_ALPHANUMERIC_SHARE`
    and `MIN_DISTINCT_WORDS`."""
    characters = "".join(text.split())
    alphanumeric = sum(char.isalnum() for char in characters)
    words = {word.casefold() for word in _WORD.findall(text)}
    return alphanumeric >= MIN_ALPHANUMERIC_SHARE * len(characters) and len(words) >= MIN_DISTINCT_WORDS


def _pages(count: int) -> str:
    return "1 page" if count == 1 else f"{count} pages"


def _so_far(pages: int) -> str:
    if not pages:
        return "so nothing of it is used."
    return "so only its first page is used." if pages == 1 else f"so only its first {pages} pages are used."


def _parse(out: bytes) -> tuple[list[str], str | None, str | None]:
    """The child's lines: `{"page": text}` for each page read, then at most one `{"problem": …}`
    and at most one `{"warnings": summary}`."""
    pages: list[str] = []
    problem = warnings = None
    for line in out.splitlines():
        try:
            message = json.loads(line)
        except ValueError:  # a line cut by the kill
            continue
        if "page" in message:
            pages.append(message["page"])
        elif "problem" in message:
            problem = message["problem"]
        elif "warnings" in message:
            warnings = message["warnings"]
    return pages, problem, warnings


# The child's side: everything below runs in `python -m worker.sources.documents`.


def _emit(**message: str) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _too_large(pages: int) -> str:
    return f"too large to read after {_pages(pages)}." if pages else "too large to read."


def _read(data: bytes, limits: Limits) -> None:
    """Write each page's text, then the problem that stopped the reading, if any."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    pages = 0
    chars = 0
    content = 0
    caps = {
        f"{name}_maximum_output_length": limits.page_bytes
        for name in ("zlib", "lzw", "run_length", "brotli", "jbig2", "array_based_stream")
    }
    try:
        with apply_configuration(maximum_declared_stream_length=limits.page_bytes, **caps):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                _emit(problem="The PDF is encrypted: upload a copy without a password.")
                return
            for page in reader.pages[: limits.max_pages]:
                contents = page.get_contents()
                size = len(contents.get_data()) if contents is not None else 0
                content += size
                if size > limits.page_bytes or content > limits.document_bytes:
                    _emit(problem=_too_large(pages))
                    return
                text = (page.extract_text() or "").strip()
                pages += 1
                _emit(page=text)
                chars += len(text) + 2
                if chars >= limits.max_chars:
                    return
    except LimitReachedError:
        _emit(problem=_too_large(pages))
    except MemoryError:
        limit = f"{limits.memory_bytes // MB} MB"
        _emit(problem=f"needed more than {limit} of memory to read, " + _so_far(pages))
    except FileNotDecryptedError:
        _emit(problem="The PDF is encrypted: upload a copy without a password.")
    except (DependencyError, NotImplementedError):  # AES needs the optional cryptography package
        _emit(problem="The PDF uses an encryption we cannot read: upload a copy without it.")
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, RecursionError) as exc:
        damaged = f"The PDF is damaged and cannot be read ({type(exc).__name__})"
        _emit(problem=f"{damaged}; " + _so_far(pages) if pages else f"{damaged}.")


class WarningSummary(logging.Handler):
    """Counts the warnings logged while a document is read (pypdf's, and Python warnings through
    `logging.captureWarnings`) and keeps the first, instead of printing each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        if not self.count:
            self.first = f"{record.name}: {record.getMessage()}"[:300]
        self.count += 1

    def summary(self) -> str | None:
        if not self.count:
            return None
        counted = "1 warning" if self.count == 1 else f"{self.count} warnings"
        return f"{counted}, the first: {self.first}"


def main() -> None:
    limits = Limits(**json.loads(sys.argv[1]))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    warnings = WarningSummary()
    logging.basicConfig(level=logging.WARNING, handlers=[warnings])
    logging.captureWarnings(True)
    try:
        _read(sys.stdin.buffer.read(), limits)
    finally:
        if summary := warnings.summary():
            _emit(warnings=summary)


if __name__ == "__main__":
    main()
