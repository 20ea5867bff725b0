"""A report's cost cap, kept before every model call (issue 18).

No database and no Celery here: `worker.report_job` builds a `SpendGuard` for each batch from the
job's row (what it has spent, its cap) and asks it before each provider attempt (`reserve`), and
tells it what each finished step cost (`settle`).

Sections are written in threads of their own, so several calls can be in flight at once: each
attempt reserves its worst case (the prompt's estimated tokens in, `max_output_tokens` out, at the
model's price) before it is sent, and keeps it until its step's real cost is known. An attempt is
sent only while spent + reserved + its own worst case ≤ the cap, so no report spends more than its
cap (give or take the error of the token estimate). An attempt that failed (a retry follows, or
the next provider of a fallback chain) stays counted at its worst case for the rest of the batch:
a provider may bill a call that timed out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from worker.pricing import estimate_cost
from worker.providers.base import Prompt, Provider

#: About four characters a token: the estimate `worker.ratelimit.estimate_tokens` uses too.
CHARS_PER_TOKEN = 4


class CapReached(Exception):
    """The next model call could pass the report's cost cap: the report is to be finished with
    the steps it has, marked partial."""

    def __init__(self, cap: float, spent: float, next_call: float) -> None:
        self.cap, self.spent, self.next_call = cap, spent, next_call
        super().__init__(describe_cap_stop(cap, spent))


class CapUnenforceable(Exception):
    """The model about to be called has no price, so a capped report cannot know what it spends."""


def describe_cap_stop(cap: float, spent: float) -> str:
    """Why a capped report stopped, for its top and its status."""
    return (
        f"its next model call could have passed its cost cap of ${cap:.2f} "
        f"(${spent:.4f} spent). Raise the cap and press Continue to finish it."
    )


def worst_case_cost(
    prices: Mapping[str, tuple[float, float]], provider: Provider, prompt: Prompt, default_max_output: int
) -> float | None:
    """The most one attempt of `provider` at `prompt` can cost, or None when its model has no
    price. The offline demo costs nothing."""
    if provider.is_demo:
        return 0.0
    max_output = getattr(provider, "max_output_tokens", default_max_output)
    input_tokens = len(prompt.system + prompt.user) // CHARS_PER_TOKEN + 1
    return estimate_cost(prices, provider.model, input_tokens, max_output)


class SpendGuard:
    """One batch's account of a capped report: spent, reserved by calls in flight, and the cap."""

    def __init__(
        self,
        cap: float | None,
        spent: float,
        prices: Mapping[str, tuple[float, float]],
        default_max_output: int,
    ) -> None:
        self.cap = cap
        self.prices = prices
        self.default_max_output = default_max_output
        self._spent = spent
        self._reserved: dict[int, list[float]] = {}  # by thread: each writes one step at a time
        self._lock = threading.Lock()

    @property
    def committed(self) -> float:
        """Spent, plus the worst case of every attempt not yet settled."""
        with self._lock:
            return self._spent + sum(sum(held) for held in self._reserved.values())

    def reserve(self, provider: Provider, prompt: Prompt) -> None:
        """Before an attempt is sent: reserve its worst case, or raise `CapReached` (nothing
        reserved) when it could pass the cap, or `CapUnenforceable` for a model with no price."""
        if self.cap is None:
            return
        estimate = worst_case_cost(self.prices, provider, prompt, self.default_max_output)
        if estimate is None:
            raise CapUnenforceable(
                f"The model {provider.model!r} has no price in LLM_PRICES, so this report's cost cap of "
                f"${self.cap:.2f} cannot be kept. Add the model's price to LLM_PRICES, or ask for the "
                "report without a cap."
            )
        with self._lock:
            in_flight = sum(sum(held) for held in self._reserved.values())
            if self._spent + in_flight + estimate > self.cap:
                raise CapReached(self.cap, self._spent + in_flight, estimate)
            self._reserved.setdefault(threading.get_ident(), []).append(estimate)

    def settle(self, cost: float | None) -> float | None:
        """A step this thread wrote is stored, at `cost`: its last attempt's reservation gives way
        to the real cost; the attempts before it (failed) stay spent at their worst case. `cost`
        None (the provider reported no usage) books the step at its worst case instead of nothing,
        or every answer without usage would free its reservation and the cap would never be
        reached. Returns what the step is booked at."""
        with self._lock:
            held = self._reserved.pop(threading.get_ident(), [])
            booked = cost if cost is not None or not held else held[-1]
            self._spent += sum(held[:-1]) + (booked or 0.0)
            return booked
