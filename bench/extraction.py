"""How well trafilatura's settings keep an article's sentences and drop the rest, on the saved pages
of tests/fixtures/pages (each with the sentences that must appear and the boilerplate that must not,
in expectations.json). Prints one row per setting: recall (must-appear sentences kept) and
precision (boilerplate phrases kept out), over all pages.

    .venv/bin/python -m bench.extraction
"""

from __future__ import annotations

import json
from pathlib import Path

from worker.sources.fetch import EXTRACTION_SETTINGS, extract_text

PAGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pages"
BASE = {"include_comments": False, "include_tables": True}
CANDIDATES: dict[str, dict[str, bool]] = {
    "trafilatura defaults": {},
    "no comments, tables (before)": BASE,
    "+ favor_precision": {**BASE, "favor_precision": True},
    "+ favor_recall": {**BASE, "favor_recall": True},
    "+ deduplicate": {**BASE, "deduplicate": True},
    "no tables": {"include_comments": False, "include_tables": False},
    "no tables + favor_precision": {"include_comments": False, "include_tables": False, "favor_precision": True},
    "favor_precision + deduplicate": {**BASE, "favor_precision": True, "deduplicate": True},
}


def score(settings: dict[str, bool]) -> tuple[int, int, int, int, list[str]]:
    kept = keep_total = dropped = drop_total = 0
    misses: list[str] = []
    for name, expected in json.loads((PAGES / "expectations.json").read_text()).items():
        _, text = extract_text((PAGES / f"{name}.html").read_bytes(), f"https://example.org/{name}", settings)
        for sentence in expected["keep"]:
            keep_total += 1
            if sentence in text:
                kept += 1
            else:
                misses.append(f"{name}: lost {sentence!r}")
        for phrase in expected["drop"] + expected.get("not_yet_dropped", []):
            drop_total += 1
            if phrase in text:
                misses.append(f"{name}: kept {phrase!r}")
            else:
                dropped += 1
    return kept, keep_total, dropped, drop_total, misses


def main() -> None:
    print("| settings | sentences kept (recall) | boilerplate dropped (precision) |")
    print("| --- | --- | --- |")
    notes = []
    for label, settings in CANDIDATES.items():
        kept, keep_total, dropped, drop_total, misses = score(settings)
        chosen = " (chosen)" if settings == EXTRACTION_SETTINGS else ""
        print(f"| {label}{chosen} | {kept}/{keep_total} | {dropped}/{drop_total} |")
        notes.extend(f"  {label}: {miss}" for miss in misses)
    print("\n".join(notes))


if __name__ == "__main__":
    main()
