"""The offline demo provider: canned, clearly illustrative text, no network, no key.

It lets someone try the whole product on a fresh machine. Its figures are drawn from a generator
seeded by the startup's name, so the same name always gives the same demo report. It pauses at
each step (`OFFLINE_STEP_DELAY`) so that the progress on the dashboard visibly moves.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import TYPE_CHECKING, Self

from worker.providers.base import Completion, Prompt, Provider

if TYPE_CHECKING:
    from config import Settings

COMPETITOR_NAMES = ("Northwind Labs", "Helix Systems", "Blue Quarry", "Parallax AI", "Meridian Works")
CITIES = ("Berlin", "London", "San Francisco", "Paris", "Toronto", "Singapore", "Austin")
STAGES = ("Pre-seed", "Seed", "Series A", "Series B")
LEAD_INVESTORS = ("Example Ventures", "Sample Capital", "Placeholder Partners")


class OfflineProvider(Provider):
    name = "offline"
    is_demo = True

    def __init__(self, step_delay: float = 0.5) -> None:
        self.step_delay = step_delay

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(step_delay=settings.offline_step_delay)

    @property
    def model(self) -> str:
        return "demo"

    def request(self, prompt: Prompt) -> Completion:
        if self.step_delay:
            time.sleep(self.step_delay)
        seed = int.from_bytes(hashlib.sha256(prompt.startup.encode()).digest()[:8], "big")
        facts = _Facts(prompt.startup, random.Random(seed))
        writer = getattr(facts, f"write_{prompt.step}", None)
        text = writer() if writer else f"(The demo provider has no text for step “{prompt.step}”.)"
        words_in = len(prompt.system.split()) + len(prompt.user.split())
        return Completion(
            text=text,
            provider=self.name,
            model=self.model,
            input_tokens=words_in,
            output_tokens=len(text.split()),
        )


class _Facts:
    """Illustrative facts about a made-up company, consistent across the steps of one report."""

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.city = rng.choice(CITIES)
        self.founded = rng.randint(2015, 2024)
        self.stage = rng.choice(STAGES)
        self.raised = rng.choice((1.5, 3, 4.2, 8, 12, 18, 25, 40))
        self.tam = rng.choice((12, 18, 24, 35, 60, 90))
        self.sam_share = rng.choice((0.08, 0.12, 0.15, 0.2))
        self.som_share = rng.choice((0.01, 0.02, 0.03))
        self.customers = rng.randint(12, 240)
        self.growth = rng.randint(8, 25)
        self.price = rng.choice((49, 99, 249, 499, 1500))
        self.competitors = rng.sample(COMPETITOR_NAMES, 3)
        self.head_count = rng.randint(5, 120)
        self.last_round_year = rng.randint(self.founded, 2025)
        self.lead_investor = rng.choice(LEAD_INVESTORS)

    def write_plan(self) -> str:
        return (
            f"Demo plan for {self.name}: establish what the company sells and to whom, size its "
            "market bottom-up, check traction and the team, map competitors, and list the risks."
        )

    def write_snapshot(self) -> str:
        # The Key facts list the Snapshot's brief asks for (`worker.pipeline.KEY_FACTS`).
        return (
            "**Key facts**\n\n"
            f"- **Stage:** {self.stage}\n"
            f"- **Total raised:** about ${self.raised}M (demo figure)\n"
            f"- **Last round:** {self.stage}, ${self.raised}M (demo figure)\n"
            f"- **Last round date:** {self.last_round_year} (demo figure)\n"
            f"- **Lead investors:** {self.lead_investor} (illustrative)\n"
            f"- **Head count:** {self.head_count} (demo figure)\n"
            f"- **Headquarters:** {self.city}\n"
            f"- **Founded:** {self.founded}\n"
            "- **Website:** Unknown\n"
            "- **Business model:** annual software subscriptions per site (illustrative)\n\n"
            f"{self.name} builds workflow software for mid-sized industrial firms (illustrative). "
            f"It was founded in {self.founded}."
        )

    def write_problem(self) -> str:
        return (
            "Operations teams still run planning on spreadsheets and e-mail. The pain is sharpest "
            "for firms with 200 to 2,000 employees: too large for ad-hoc tools, too small for a "
            "bespoke ERP project. Today they cope with consultants and manual reconciliation."
        )

    def write_product(self) -> str:
        return (
            f"{self.name} offers a hosted planning workspace with connectors to common ERPs. "
            "Why now: cheaper language models make unstructured data usable, and buyers have "
            "budget for tools that show savings within a quarter."
        )

    def write_market(self) -> str:
        sam = self.tam * self.sam_share
        som = sam * self.som_share
        return (
            "| Measure | Estimate | Method |\n|---|---|---|\n"
            f"| TAM | ${self.tam}B | Top-down: global spend on operations software |\n"
            f"| SAM | ${sam:.1f}B | {self.sam_share:.0%} of TAM: mid-sized firms in reachable regions |\n"
            f"| SOM | ${som * 1000:.0f}M | Bottom-up: reachable accounts × average contract value |\n\n"
            "All three figures are demo values, not estimates."
        )

    def write_business_model(self) -> str:
        return (
            f"Subscription per seat, list price about ${self.price} per month, with annual "
            "contracts and an implementation fee. Gross margin of a hosted product of this kind is "
            "typically 70–80 %."
        )

    def write_traction(self) -> str:
        return (
            f"- About {self.customers} paying customers (demo figure)\n"
            f"- Revenue growing roughly {self.growth} % month on month\n"
            "- Two pilot partnerships announced with regional manufacturers"
        )

    def write_team(self) -> str:
        return (
            "- **CEO:** former operations lead at a logistics scale-up (illustrative)\n"
            "- **CTO:** previously built data pipelines at a large cloud provider (illustrative)\n"
            "- **Gap:** no dedicated sales leader yet"
        )

    def write_competition(self) -> str:
        a, b, c = self.competitors
        return (
            "| Competitor | Approach | Scale | How this startup differs |\n|---|---|---|---|\n"
            f"| {a} | Horizontal planning suite | Series C | Narrower, faster to deploy |\n"
            f"| {b} | ERP add-on | Public company | Works across several ERPs |\n"
            f"| {c} | Consulting-led | Bootstrapped | Product, not services |\n"
            "| Spreadsheets | Status quo | Everywhere | Automation and audit trail |\n\n"
            f"{self.name} wins on time to value; incumbents win on distribution."
        )

    def write_risks(self) -> str:
        return (
            "- **High:** incumbents bundle a similar feature into their suites. Mitigation: "
            "integrations and speed.\n"
            "- **Medium:** long sales cycles in industrial accounts. Mitigation: land with a pilot.\n"
            "- **Low:** key-person risk in engineering. Mitigation: hire a second senior engineer."
        )

    def write_thesis(self) -> str:
        return (
            "**Bull:** a painful, budgeted problem; a product that shows value in weeks; room to "
            "expand from planning into procurement.\n\n"
            "**Bear:** a crowded market where distribution beats product; growth may stall when "
            "the founders stop selling themselves."
        )

    def write_diligence(self) -> str:
        return (
            "1. What is net revenue retention across the last four quarters?\n"
            "2. How long is the median sales cycle, and who signs?\n"
            "3. Which customers churned, and why?\n"
            "4. How dependent is the product on a single ERP vendor's APIs?"
        )

    def write_synthesis(self) -> str:
        return (
            f"{self.name} is a {self.stage}-stage company from {self.city} selling planning "
            "software to mid-sized industrial firms. The problem is real and the early traction "
            "is encouraging, but competition from suite vendors is the central risk. "
            "Recommendation: **take a meeting** to test retention and sales-cycle data. "
            "(Demo text.)"
        )
