"""What reports will cost before they run: model calls, tokens and a cost range per provider and
model in use, from the price table (`worker.pricing`) and the measured size of past reports.

How the numbers are made:

- **Size of a report**, measured: over the latest `HISTORY_REPORTS` succeeded jobs (not a
  watch's re-run, which keeps unchanged sections without a call, nor a partial report, stopped
  at its cost cap before its last sections), the paid steps (`job_steps`
  with a provider call, not the demo provider's, which counts words rather than tokens): calls
  per report, and input and output tokens per call. Measured once per `HISTORY_TTL_SECONDS` per
  process, so an estimate costs no query most of the time.
- **Default size**, when no report has been measured: `DEFAULT_CALLS_PER_REPORT` (one call per
  step: the plan, each section, the summary), `DEFAULT_INPUT_TOKENS_PER_CALL` and
  `DEFAULT_OUTPUT_TOKENS_PER_CALL` (a prompt with a few source excerpts and the findings so far;
  an answer of a few hundred words).
- **Cost range**: the expected cost (size × price) less and plus a margin: the spread of the
  measured reports' sizes (their coefficient of variation), at least `MIN_MARGIN`; with the
  default size, `DEFAULT_MARGIN`. The high end is what a budget check counts.
- **Providers in use**: the one `LLM_PROVIDER` selects, which writes every call unless it fails;
  the providers of `LLM_FALLBACK` are listed with what the same reports would cost if they wrote
  them. The demo provider costs nothing; a model missing from the price table has no cost.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, or_, select

from worker.models import Job, JobState, JobStep
from worker.pipeline import TOTAL_STEPS
from worker.pricing import estimate_cost
from worker.providers import fallback_names, load_provider, resolve_provider_name
from worker.providers.base import FatalProviderError
from worker.store import JobStore

if TYPE_CHECKING:
    from config import Settings

DEFAULT_CALLS_PER_REPORT = TOTAL_STEPS
DEFAULT_INPUT_TOKENS_PER_CALL = 2500
DEFAULT_OUTPUT_TOKENS_PER_CALL = 700
DEFAULT_MARGIN = 0.5
MIN_MARGIN = 0.2
HISTORY_REPORTS = 50
HISTORY_TTL_SECONDS = 60.0
#: The model each registry provider is configured with, by the setting that names it.
MODEL_SETTINGS = {"openai": "openai_model", "anthropic": "anthropic_model", "gemini": "gemini_model"}
DEMO_PROVIDER = "offline"


@dataclass(frozen=True)
class ReportSize:
    """The expected size of one report, and what it rests on."""

    calls: float
    input_tokens_per_call: float
    output_tokens_per_call: float
    margin: float
    source: Literal["history", "default"]
    reports_measured: int = 0


DEFAULT_SIZE = ReportSize(
    calls=DEFAULT_CALLS_PER_REPORT,
    input_tokens_per_call=DEFAULT_INPUT_TOKENS_PER_CALL,
    output_tokens_per_call=DEFAULT_OUTPUT_TOKENS_PER_CALL,
    margin=DEFAULT_MARGIN,
    source="default",
)


@dataclass(frozen=True)
class ModelInUse:
    provider: str
    model: str | None
    role: Literal["primary", "fallback"]


@dataclass(frozen=True)
class ModelCost:
    model: ModelInUse
    #: (low, high) in US dollars, or None when the model has no price.
    cost_usd: tuple[float, float] | None


@dataclass(frozen=True)
class Estimate:
    reports: int
    size: ReportSize
    calls: int
    input_tokens: int
    output_tokens: int
    models: list[ModelCost]

    @property
    def cost_usd(self) -> tuple[float, float] | None:
        """The range for the primary provider, which writes the reports unless it fails."""
        return self.models[0].cost_usd if self.models else None

    @property
    def high_usd(self) -> float:
        """What a budget check counts: the high end, 0 when there is no price to count."""
        cost = self.cost_usd
        return cost[1] if cost else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "startups": self.reports,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": _cost_dict(self.cost_usd),
            "per_report": {
                "calls": round(self.size.calls, 2),
                "input_tokens": round(self.size.calls * self.size.input_tokens_per_call),
                "output_tokens": round(self.size.calls * self.size.output_tokens_per_call),
            },
            "models": [
                {
                    "provider": cost.model.provider,
                    "model": cost.model.model,
                    "role": cost.model.role,
                    "cost_usd": _cost_dict(cost.cost_usd),
                }
                for cost in self.models
            ],
            "basis": {
                "source": self.size.source,
                "reports_measured": self.size.reports_measured,
                "margin": round(self.size.margin, 3),
            },
        }


def _cost_dict(cost: tuple[float, float] | None) -> dict[str, float] | None:
    return {"low": round(cost[0], 6), "high": round(cost[1], 6)} if cost else None


def measure_report_size(store: JobStore, limit: int = HISTORY_REPORTS) -> ReportSize:
    """The size of the latest `limit` succeeded reports (see the module's docstring), or
    `DEFAULT_SIZE` when there is none to measure."""
    recent = (
        select(Job.id)
        .where(
            Job.state == JobState.SUCCESS,
            or_(Job.trigger.is_(None), Job.trigger != "watch"),
            or_(Job.partial.is_(None), Job.partial.is_(False)),
        )
        .order_by(Job.finished_at.desc())
        .limit(limit)
        .subquery()
    )
    per_report = (
        select(func.count(), func.sum(JobStep.input_tokens), func.sum(JobStep.output_tokens))
        .where(
            JobStep.job_id.in_(select(recent.c.id)),
            or_(JobStep.paid.is_(None), JobStep.paid.is_(True)),
            JobStep.unchanged_since.is_(None),
            JobStep.provider != DEMO_PROVIDER,
        )
        .group_by(JobStep.job_id)
    )
    with store.session() as session:
        rows = [(int(calls), int(t_in or 0), int(t_out or 0)) for calls, t_in, t_out in session.execute(per_report)]
    return size_of(rows)


def size_of(rows: list[tuple[int, int, int]]) -> ReportSize:
    """A `ReportSize` from (calls, input tokens, output tokens) per measured report."""
    rows = [row for row in rows if row[0] > 0]
    if not rows:
        return DEFAULT_SIZE
    calls = sum(row[0] for row in rows)
    totals = [row[1] + row[2] for row in rows]
    mean = statistics.fmean(totals)
    spread = statistics.pstdev(totals) / mean if len(rows) > 1 and mean > 0 else 0.0
    return ReportSize(
        calls=calls / len(rows),
        input_tokens_per_call=sum(row[1] for row in rows) / calls,
        output_tokens_per_call=sum(row[2] for row in rows) / calls,
        margin=max(MIN_MARGIN, spread),
        source="history",
        reports_measured=len(rows),
    )


def models_in_use(settings: Settings) -> list[ModelInUse]:
    """The primary provider and its fallbacks, each with its model's name (None when unknown)."""
    names = [resolve_provider_name(settings), *fallback_names(settings)]
    return [
        ModelInUse(name, _model_of(name, settings), "primary" if i == 0 else "fallback") for i, name in enumerate(names)
    ]


def _model_of(name: str, settings: Settings) -> str | None:
    if name in MODEL_SETTINGS:
        return getattr(settings, MODEL_SETTINGS[name])
    try:  # the demo provider, or one named by its class path: ask it (models_in_use is cached)
        return load_provider(name, settings).model
    except FatalProviderError:
        return None


def estimate_reports(reports: int, size: ReportSize, models: list[ModelInUse], settings: Settings) -> Estimate:
    """The estimate for `reports` new reports of `size`, written by `models` (see the docstring)."""
    calls = reports * size.calls
    input_tokens = calls * size.input_tokens_per_call
    output_tokens = calls * size.output_tokens_per_call
    costs = []
    for model in models:
        if model.provider == DEMO_PROVIDER:
            expected: float | None = 0.0
        elif model.model is None:
            expected = None
        else:
            expected = estimate_cost(settings.llm_prices, model.model, round(input_tokens), round(output_tokens))
        # A margin above 1 (reports whose sizes vary more than their mean) puts no cost below 0.
        cost_range = None if expected is None else (expected * max(0.0, 1 - size.margin), expected * (1 + size.margin))
        costs.append(ModelCost(model, cost_range))
    return Estimate(reports, size, round(calls), round(input_tokens), round(output_tokens), costs)


class Estimator:
    """Estimates for one process: the measured size and the models in use are kept for
    `ttl` seconds, so that an estimate is arithmetic, not a query (POST /estimate's p99)."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        *,
        ttl: float = HISTORY_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._size: ReportSize | None = None
        self._measured_at = 0.0
        self._models: list[ModelInUse] | None = None

    def size(self) -> ReportSize:
        with self._lock:
            if self._size is None or self.clock() - self._measured_at >= self.ttl:
                self._size = measure_report_size(self.store)
                self._measured_at = self.clock()
            return self._size

    def models(self) -> list[ModelInUse]:
        with self._lock:
            if self._models is None:
                self._models = models_in_use(self.settings)
            return self._models

    def estimate(self, reports: int) -> Estimate:
        return estimate_reports(reports, self.size(), self.models(), self.settings)
