"""Which company a name means, from the results of a search for it, before any model is paid.

Search results are grouped by registrable domain (`acme.co.uk` for `www.acme.co.uk`, from the
Public Suffix List that the `tld` package ships, so no network). A domain is a *candidate* when
its name matches the startup's: `acmerobotics.com`, `acme-robotics.io`, `getacmerobotics.com` for
"Acme Robotics" match fully; `acme.ai` matches in part (the first word). Aggregators and press
(`crunchbase.com`, `techcrunch.com`) never match, so they are no candidates however often they
appear.

The decision: the analyst's website, when given, is the company. Otherwise one candidate that
matches better than every other is the company; two or more that match equally well are an
ambiguity, which the caller resolves by asking, by taking the first (the search engine's best),
or by failing. No candidate at all leaves the company unknown: the report goes on unanchored.

Limits, said plainly: a company whose domain does not carry its name (`Alphabet` at `abc.xyz`)
is not found, and one company with several domains (`acme.com` and `acme.io`) looks like two.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tld import get_tld

from worker.sources.base import SearchResult

#: Words that say what kind of company it is, not which one ("Acme Inc." is Acme).
LEGAL_WORDS = frozenset(
    {"inc", "incorporated", "ltd", "limited", "llc", "gmbh", "ag", "sa", "sas", "bv", "plc", "corp", "co", "company"}
)
#: What startups put around their name in a domain when the bare one was taken.
DOMAIN_AFFIXES = ("get", "try", "use", "join", "hello", "go", "with", "hq", "app", "inc", "labs", "ai", "io")
FULL, PARTIAL = 2, 1
TITLE_SEPARATORS = re.compile(r"\s+[|\-–—·]\s+|:\s+")


@dataclass(frozen=True)
class Candidate:
    """A company the name may mean: as its best search result names it, its site, a line about it."""

    name: str
    website: str
    snippet: str

    @property
    def domain(self) -> str:
        return urlsplit(self.website).hostname or self.website

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "website": self.website, "snippet": self.snippet}


@dataclass(frozen=True)
class Identity:
    """The company a report is about: its website when known, and the other candidates seen."""

    website: str | None
    candidates: tuple[Candidate, ...] = ()
    #: True when several matched equally well and the search's first was taken.
    guessed: bool = False

    @property
    def domain(self) -> str | None:
        return registrable_domain(self.website) if self.website else None

    @property
    def others(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.domain != self.domain)


class CompanyAmbiguous(Exception):
    """Two or more companies match the name equally well; `candidates` lists them, best first."""

    def __init__(self, startup: str, candidates: Sequence[Candidate]) -> None:
        self.candidates = tuple(candidates)
        names = "; ".join(f"{c.name} ({c.domain})" for c in self.candidates)
        super().__init__(f"Several companies are called {startup}: {names}.")


def registrable_domain(url: str) -> str | None:
    """`acme.co.uk` for `https://www.acme.co.uk/about`; None for what has no public suffix."""
    if "://" not in url:
        url = f"https://{url}"
    parsed = get_tld(url, as_object=True, fail_silently=True)
    return parsed.fld.lower() if parsed else None


def _key(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def _name_words(startup: str) -> list[str]:
    words = [_key(word) for word in startup.split()]
    return [word for word in words if word and word not in LEGAL_WORDS] or [_key(startup)]


def match_strength(startup: str, domain: str) -> int:
    """FULL when the domain's label is the name (give or take an affix such as `get` or `hq`),
    PARTIAL when it is the name's first words (`acme` for "Acme Robotics"), else 0."""
    parsed = get_tld(f"https://{domain}", as_object=True, fail_silently=True)
    if not parsed:
        return 0
    label = _key(parsed.domain)
    words = _name_words(startup)
    whole = "".join(words)
    if not label or not whole:
        return 0
    if label == whole or any(label in (affix + whole, whole + affix) for affix in DOMAIN_AFFIXES):
        return FULL
    first_words = {"".join(words[:count]) for count in range(1, len(words))}
    if len(label) >= 3 and label in first_words:
        return PARTIAL
    return 0


def _display_name(startup: str, title: str, domain: str) -> str:
    """The part of a result's title that names the company ("Acme Robotics | Home" → "Acme Robotics")."""
    parts = [part.strip() for part in TITLE_SEPARATORS.split(title) if part.strip()]
    first_word = _name_words(startup)[0]
    named = next((part for part in parts if first_word in _key(part)), parts[0] if parts else "")
    return " ".join(named.split())[:80] or domain


def company_candidates(startup: str, results: Sequence[SearchResult]) -> list[tuple[Candidate, int]]:
    """The candidates among `results`, one per registrable domain, in the order the search ranked
    them, each with its match strength."""
    found: dict[str, tuple[Candidate, int]] = {}
    for result in results:
        domain = registrable_domain(result.url)
        if domain is None or domain in found:
            continue
        strength = match_strength(startup, domain)
        if strength:
            name = _display_name(startup, result.title, domain)
            snippet = " ".join(result.snippet.split())[:200]
            found[domain] = (Candidate(name, f"https://{domain}", snippet), strength)
    return list(found.values())


def identify_company(
    startup: str, results: Sequence[SearchResult], *, website: str | None = None, take_best: bool = False
) -> Identity:
    """The company `startup` means (see the module's docstring). Raises `CompanyAmbiguous` when
    several match equally well, unless `take_best`, which takes the search engine's first."""
    ranked = company_candidates(startup, results)
    candidates = tuple(candidate for candidate, _ in ranked)
    if website:
        return Identity(website, candidates)
    if not ranked:
        return Identity(None)
    best = max(strength for _, strength in ranked)
    leaders = [candidate for candidate, strength in ranked if strength == best]
    if len(leaders) > 1 and not take_best:
        raise CompanyAmbiguous(startup, leaders)
    return Identity(leaders[0].website, candidates, guessed=len(leaders) > 1)
