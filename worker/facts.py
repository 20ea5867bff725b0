"""A report's key facts as data: what the comparison table, the API and the exports read.

One `Fact` per entry of `FACT_FIELDS`, in that order, each with the value the report states (None
when unknown), the sources it rests on, and whether its figures were found in them (the figure
check of `worker.sources.fact_check`). They are stored as JSON on the job's row (`jobs.facts`) when
the report succeeds; a report written before facts were kept has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: (key, label) of every fact, in the order a comparison shows them: the recommendation on top.
FACT_FIELDS: tuple[tuple[str, str], ...] = (
    ("recommendation", "Recommendation"),
    ("website", "Website"),
    ("headquarters", "Headquarters"),
    ("founded", "Founded"),
    ("stage", "Stage"),
    ("total_raised", "Total raised"),
    ("last_round", "Last round"),
    ("last_round_date", "Last round date"),
    ("lead_investors", "Lead investors"),
    ("head_count", "Head count"),
    ("business_model", "Business model"),
)
FACT_LABELS: dict[str, str] = dict(FACT_FIELDS)


@dataclass(frozen=True)
class FactSource:
    number: int
    title: str
    #: None for what the analyst provided (notes, a PDF).
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "title": self.title, "url": self.url}


@dataclass(frozen=True)
class Fact:
    key: str
    #: As the report states it, without citations; None when the report does not know it.
    value: str | None
    sources: tuple[FactSource, ...] = ()
    #: True when every figure in the value was found in a cited source, False when one was not,
    #: None when there was nothing to check (no figure, no source, or no figure check).
    found: bool | None = None

    @property
    def label(self) -> str:
        return FACT_LABELS[self.key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "sources": [source.to_dict() for source in self.sources],
            "found": self.found,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fact:
        sources = tuple(FactSource(int(s["number"]), str(s.get("title") or ""), s.get("url")) for s in data["sources"])
        return cls(key=data["key"], value=data.get("value"), sources=sources, found=data.get("found"))


def dump_facts(facts: list[Fact]) -> str:
    """The JSON stored in `jobs.facts`."""
    return json.dumps([fact.to_dict() for fact in facts], ensure_ascii=False)


def load_facts(stored: str | None) -> list[Fact] | None:
    """`jobs.facts` read back, one `Fact` per entry of `FACT_FIELDS` in its order (a key missing
    from what was stored is unknown); None for a report stored without facts."""
    if not stored:
        return None
    by_key = {fact.key: fact for fact in map(Fact.from_dict, json.loads(stored)) if fact.key in FACT_LABELS}
    return [by_key.get(key, Fact(key, None)) for key, _ in FACT_FIELDS]
