"""Text from a PDF an analyst uploaded or a link led to, with pypdf, read in a child process.

pypdf is pure Python: no poppler to install on the workers. It reads the text layer only, so a
scanned document without one is reported as such rather than passed on empty.

A small PDF can hold a great deal of work: pages that share one Flate stream inflating to 70 MB
cost pypdf about 9 s each, and a few such files took one process to 900 MB. So a PDF is never
read in the process that asked: `read_pdf` runs `python -m worker.sources.documents` with a
wall-clock limit, an address-space limit and caps on the decompressed content per page and per
document. The child writes each page's text as it goes, so whatever limit ends it, the pages
read before it are kept, and the reading says which limit stopped it and where.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: A PDF header may follow a little junk; readers look for it within the first KiB.
HEADER_WINDOW = 1024
MB = 1024 * 1024
#: Where `python -m worker.sources.documents` finds the `worker` package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    pages, problem = _parse(out)
    if timed_out:
        problem = f"took more than {limits.seconds:g} s to read, " + _so_far(len(pages))
    elif problem is None and child.returncode != 0:
        logger.warning("reading a PDF ended with exit status %s: %s", child.returncode, err.decode(errors="replace"))
        problem = "could not be read to the end, " + _so_far(len(pages))
    text = "\n\n".join(page for page in pages if page).strip()[: limits.max_chars].rstrip()
    if not text and problem is None:
        problem = "The PDF has no extractable text (a scan without a text layer?)."
    return Reading(text, problem)


def _pages(count: int) -> str:
    return "1 page" if count == 1 else f"{count} pages"


def _so_far(pages: int) -> str:
    if not pages:
        return "so nothing of it is used."
    return "so only its first page is used." if pages == 1 else f"so only its first {pages} pages are used."


def _parse(out: bytes) -> tuple[list[str], str | None]:
    """The child's lines: `{"page": text}` for each page read, then at most one `{"problem": …}`."""
    pages: list[str] = []
    problem = None
    for line in out.splitlines():
        try:
            message = json.loads(line)
        except ValueError:  # a line cut by the kill
            continue
        if "page" in message:
            pages.append(message["page"])
        elif "problem" in message:
            problem = message["problem"]
    return pages, problem


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


def main() -> None:
    limits = Limits(**json.loads(sys.argv[1]))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    _read(sys.stdin.buffer.read(), limits)


if __name__ == "__main__":
    main()
