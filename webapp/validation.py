"""What the API and the dashboard accept as a startup's name, and how a batch is read."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from werkzeug.datastructures import FileStorage, MultiDict

from worker.jobs import Upload
from worker.models import MAX_STARTUP_CHARS, MAX_WEBSITE_CHARS, startup_key

MAX_BATCH = 50
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# Invisible: a name with one inside looks the same as the name without it.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# Unicode's Bidi_Control characters: they make text display in another order than it is stored.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# The alphabets whose letters look alike (Latin T, Greek Τ, Cyrillic Т), which NFKC does not fold.
_LOOKALIKE_ALPHABETS = ("LATIN", "GREEK", "CYRILLIC")


class ValidationError(ValueError):
    """A user's input that cannot be accepted; the message says what to change."""


def normalise_name(text: str) -> str:
    """The form a name is stored and compared in: zero-width characters dropped, then NFKC, so that
    fullwidth or styled letters (Ｔｅｓｌａ, 𝐓esla) become the letters they show; trimmed."""
    return unicodedata.normalize("NFKC", text.translate(_ZERO_WIDTH)).strip()


def _mixed_alphabets(name: str) -> tuple[str, list[str]] | None:
    """The first word that mixes Latin, Greek or Cyrillic letters, with those alphabets, or None."""
    for word in name.split():
        if word.isascii():  # Latin letters alone (most names): skip looking up each one's name
            continue
        alphabets = {unicodedata.name(char, "").partition(" ")[0] for char in word if char.isalpha()}
        mixed = [alphabet for alphabet in _LOOKALIKE_ALPHABETS if alphabet in alphabets]
        if len(mixed) > 1:
            return word, [alphabet.capitalize() for alphabet in mixed]
    return None


def _name_problem(name: str) -> str | None:
    """What is wrong with a normalised name's characters, as the end of a sentence, or None."""
    if _CONTROL_CHARS.search(name):
        return "contains control characters such as line breaks or tabs"
    if _BIDI_CONTROLS.search(name):
        return (
            "contains an invisible direction control (such as U+202E), which makes text display in "
            "another order than it is stored; remove it"
        )
    mixed = _mixed_alphabets(name)
    if mixed:
        word, alphabets = mixed
        return (
            f"mixes {' and '.join(alphabets)} letters in one word (“{word}”), which can make it look like "
            "another name; type the word in one alphabet"
        )
    return None


def validate_startup(value: object) -> str:
    """The startup's name, normalised (`normalise_name`), or a `ValidationError` that says what is
    wrong with it."""
    if value is None:
        raise ValidationError('"startup" is required: send {"startup": "<company name>"}.')
    if not isinstance(value, str):
        raise ValidationError('"startup" must be a string (the company\'s name).')
    if _SURROGATES.search(value):
        raise ValidationError('"startup" must be valid Unicode text (it contains a lone surrogate).')
    name = normalise_name(value)
    if not name:
        raise ValidationError('"startup" must not be empty.')
    if len(name) > MAX_STARTUP_CHARS:
        raise ValidationError(f'"startup" must be at most {MAX_STARTUP_CHARS} characters (got {len(name)}).')
    problem = _name_problem(name)
    if problem:
        raise ValidationError(f'"startup" {problem}.')
    return name


MAX_NOTES_CHARS = 20_000
_NOTE_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # line breaks and tabs are fine


def validate_website(value: object) -> str | None:
    """The company's website as an http(s) URL, None when not given, or a `ValidationError`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError('"website" must be a string, e.g. "https://acme.example".')
    url = value.strip()
    if not url:
        return None
    if "://" not in url:
        url = f"https://{url}"
    if len(url) > MAX_WEBSITE_CHARS or _CONTROL_CHARS.search(url) or _SURROGATES.search(url) or " " in url:
        raise ValidationError('"website" must be a web address such as https://acme.example.')
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "." not in parts.hostname.strip("."):
        raise ValidationError('"website" must be an http or https address such as https://acme.example.')
    return url


def validate_notes(value: object) -> str | None:
    """Pasted notes, trimmed; None when empty; a `ValidationError` for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError('"notes" must be a string.')
    notes = value.strip()
    if not notes:
        return None
    if len(notes) > MAX_NOTES_CHARS:
        raise ValidationError(f'"notes" must be at most {MAX_NOTES_CHARS} characters (got {len(notes)}).')
    if _NOTE_CONTROL_CHARS.search(notes) or _SURROGATES.search(notes):
        raise ValidationError('"notes" must be plain text (it contains control characters or invalid Unicode).')
    return notes


NOT_A_CAP = 'The cost cap ("max_cost_usd") must be a positive number of US dollars, e.g. 0.50.'


def validate_max_cost(value: object, limit: float | None) -> float | None:
    """A cost cap in US dollars: a positive number no higher than MAX_COST_PER_REPORT_USD (`limit`,
    None for no limit); None when not given. A form's text is read as a number too."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().removeprefix("$"))
        except ValueError:
            raise ValidationError('The cost cap ("max_cost_usd") must be a number of US dollars, e.g. 0.50.') from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(NOT_A_CAP)
    try:
        value = float(value)  # a JSON integer may have more digits than a float holds
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(NOT_A_CAP)
    if limit is not None and value > limit:
        raise ValidationError(
            f'The cost cap ("max_cost_usd") must be at most ${limit:g}, the most a report may cost here '
            "(MAX_COST_PER_REPORT_USD)."
        )
    return value


def report_cap(value: object, limit: float | None) -> float | None:
    """The cost cap a new report runs under: the request's (`validate_max_cost`), else the
    setting's MAX_COST_PER_REPORT_USD (`limit`, None for no cap)."""
    cap = validate_max_cost(value, limit)
    return cap if cap is not None else limit


def upload_filename(raw: str | None) -> str:
    """An uploaded file's name as we show it: direction controls, zero-width and control characters
    stripped, not refused, since the name is only a label and the analyst cannot edit it in the
    browser; what is left reads in the order it is stored."""
    name = _BIDI_CONTROLS.sub("", _CONTROL_CHARS.sub("", (raw or "").translate(_ZERO_WIDTH))).strip()
    return name or "document.pdf"


def uploaded_documents(files: MultiDict[str, FileStorage]) -> list[Upload]:
    """The files of a form's `document` field (the API's and the dashboard's alike)."""
    return [Upload(upload_filename(f.filename), f.read()) for f in files.getlist("document") if f]


def parse_page_number(raw: str | None, *, maximum: int = 10_000) -> int | None:
    """A page or list size from a query string: 1 to `maximum`, or None when it is not one."""
    if raw is None or not re.fullmatch(r"[0-9]{1,6}", raw):
        return None
    value = int(raw)
    return value if 1 <= value <= maximum else None


@dataclass(frozen=True)
class Batch:
    names: list[str]
    blank_lines: int
    duplicates: int

    @property
    def note(self) -> str:
        """Says what was dropped, or nothing."""
        dropped = []
        if self.duplicates:
            dropped.append(f"{self.duplicates} repeated name{'s' if self.duplicates != 1 else ''}")
        if self.blank_lines:
            dropped.append(f"{self.blank_lines} blank line{'s' if self.blank_lines != 1 else ''}")
        return f"Dropped {' and '.join(dropped)}." if dropped else ""


def parse_batch(text: str) -> Batch:
    """One name per line, each normalised (`normalise_name`). Blank lines and repeats (any case) are
    dropped; a bad line rejects the whole batch, so that nothing is half-submitted."""
    names: list[str] = []
    seen: set[str] = set()
    blank = duplicates = 0
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if _SURROGATES.search(line):
            problems.append(f"line {number} contains invalid text")
            continue
        name = normalise_name(line)
        if not name:
            blank += 1
            continue
        if len(name) > MAX_STARTUP_CHARS:
            problems.append(f"line {number} is longer than {MAX_STARTUP_CHARS} characters")
            continue
        problem = _name_problem(name)
        if problem:
            problems.append(f"line {number} {problem}")
            continue
        key = startup_key(name)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        names.append(name)
    if problems:
        problems[0] = problems[0][0].upper() + problems[0][1:]
        raise ValidationError("; ".join(problems) + ".")
    if not names:
        raise ValidationError("Enter at least one startup name.")
    if len(names) > MAX_BATCH:
        raise ValidationError(f"{len(names)} names is more than the {MAX_BATCH} a batch may hold.")
    return Batch(names=names, blank_lines=blank, duplicates=duplicates)
