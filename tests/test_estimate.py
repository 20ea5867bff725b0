"""The estimate of what reports will cost: the measured size of past reports, the default size
without history, the cost range per provider and model, and the per-process cache."""

from __future__ import annotations

import pytest

from config import Settings
from tests.conftest import make_settings
from worker.estimate import (
    DEFAULT_CALLS_PER_REPORT,
    DEFAULT_INPUT_TOKENS_PER_CALL,
    DEFAULT_MARGIN,
    DEFAULT_OUTPUT_TOKENS_PER_CALL,
    DEFAULT_SIZE,
    MIN_MARGIN,
    Estimator,
    ModelInUse,
    estimate_reports,
    measure_report_size,
    models_in_use,
    size_of,
)
from worker.pipeline import Checkpoint
from worker.store import JobStore


@pytest.fixture
def store(settings: Settings) -> JobStore:
    return JobStore(settings.database_url)


def stored_report(
    store: JobStore,
    steps: list[tuple[int, int]],
    *,
    provider: str = "openai",
    succeeded: bool = True,
    trigger: str | None = None,
    unpaid: int = 0,
    owner: str | None = "admin",
    partial: bool = False,
) -> str:
    """A job with one paid step per (input, output) tokens, and `unpaid` steps without a call."""
    job = store.create_job("Measured Co", owner, trigger=trigger)
    store.mark_started(job.id, worker="w@h", attempt=1)
    for number, (tokens_in, tokens_out) in enumerate(steps):
        checkpoint = Checkpoint(f"s{number}", "text", provider, "gpt-5-mini", tokens_in, tokens_out)
        store.save_checkpoint(job.id, checkpoint, 0.001)
    for number in range(unpaid):
        store.save_checkpoint(job.id, Checkpoint(f"u{number}", "none", "none", "", paid=False))
    if succeeded:
        store.mark_succeeded(job.id, report_md="# Report", provider=f"{provider}/gpt-5-mini", partial=partial)
    else:
        store.mark_failed(job.id, error="failed")
    return job.id


def openai_settings(**overrides: object) -> Settings:
    return make_settings(**{"llm_provider": "openai", "openai_model": "gpt-5-mini", **overrides})


def test_without_history_the_default_size_is_used(store: JobStore) -> None:
    size = measure_report_size(store)
    assert size == DEFAULT_SIZE and size.source == "default"
    assert size.calls == DEFAULT_CALLS_PER_REPORT == 13


def test_the_size_is_measured_from_the_paid_steps_of_succeeded_reports(store: JobStore) -> None:
    stored_report(store, [(1000, 200)] * 10, unpaid=3)  # sections without sources: no call
    stored_report(store, [(2000, 400)] * 12)
    # Not measured: a failed job, a watch's re-run (kept sections), the demo provider's words, a
    # report stopped at its cost cap (its missing sections would make reports look smaller).
    stored_report(store, [(99, 99)] * 2, partial=True)
    stored_report(store, [(99_000, 99_000)] * 13, succeeded=False)
    stored_report(store, [(99_000, 99_000)] * 2, trigger="watch")
    stored_report(store, [(99_000, 99_000)] * 13, provider="offline")

    size = measure_report_size(store)
    assert size.source == "history" and size.reports_measured == 2
    assert size.calls == 11
    assert size.input_tokens_per_call == pytest.approx((10 * 1000 + 12 * 2000) / 22)
    assert size.output_tokens_per_call == pytest.approx((10 * 200 + 12 * 400) / 22)
    # The two reports' totals (12,000 and 28,800 tokens) spread by 41 % around their mean.
    assert size.margin == pytest.approx(8400 / 20400)


def test_the_margin_is_never_narrower_than_the_minimum() -> None:
    assert size_of([(13, 30_000, 9_000), (13, 30_000, 9_000)]).margin == MIN_MARGIN
    assert size_of([(13, 30_000, 9_000)]).margin == MIN_MARGIN
    assert size_of([]) == DEFAULT_SIZE


def test_a_margin_wider_than_the_mean_puts_no_cost_below_zero() -> None:
    settings = openai_settings()
    size = size_of([(1, 100, 10), (1, 100, 10), (1, 100, 10), (13, 300_000, 90_000)])
    assert size.margin > 1
    low, high = estimate_reports(1, size, models_in_use(settings), settings).cost_usd
    assert low == 0.0 and high > 0


def test_the_cost_range_is_the_price_of_the_expected_tokens_less_and_plus_the_margin() -> None:
    settings = openai_settings()
    estimate = estimate_reports(10, DEFAULT_SIZE, models_in_use(settings), settings)
    assert estimate.calls == 10 * DEFAULT_CALLS_PER_REPORT
    assert estimate.input_tokens == 10 * 13 * DEFAULT_INPUT_TOKENS_PER_CALL
    assert estimate.output_tokens == 10 * 13 * DEFAULT_OUTPUT_TOKENS_PER_CALL
    input_price, output_price = settings.llm_prices["gpt-5-mini"]
    expected = (estimate.input_tokens * input_price + estimate.output_tokens * output_price) / 1_000_000
    low, high = estimate.cost_usd
    assert low == pytest.approx(expected * (1 - DEFAULT_MARGIN))
    assert high == pytest.approx(expected * (1 + DEFAULT_MARGIN))
    assert estimate.high_usd == high
    body = estimate.as_dict()
    assert body["models"] == [
        {"provider": "openai", "model": "gpt-5-mini", "role": "primary", "cost_usd": body["cost_usd"]}
    ]
    assert body["basis"] == {"source": "default", "reports_measured": 0, "margin": DEFAULT_MARGIN}
    assert body["per_report"]["calls"] == 13


def test_fallbacks_are_listed_with_their_own_price_and_the_demo_provider_costs_nothing() -> None:
    settings = openai_settings(llm_fallback="anthropic,offline", anthropic_model="claude-haiku-4-5")
    models = models_in_use(settings)
    assert models == [
        ModelInUse("openai", "gpt-5-mini", "primary"),
        ModelInUse("anthropic", "claude-haiku-4-5", "fallback"),
        ModelInUse("offline", "demo", "fallback"),
    ]
    estimate = estimate_reports(1, DEFAULT_SIZE, models, settings)
    openai, anthropic, offline = (cost.cost_usd for cost in estimate.models)
    assert anthropic[1] > openai[1] > 0  # Haiku's list price is above gpt-5-mini's
    assert offline == (0.0, 0.0)

    demo = make_settings(llm_provider="offline")
    assert estimate_reports(5, DEFAULT_SIZE, models_in_use(demo), demo).cost_usd == (0.0, 0.0)


def test_a_model_without_a_price_has_no_cost_and_counts_nothing() -> None:
    settings = openai_settings(openai_model="llama3.1:8b")
    estimate = estimate_reports(3, DEFAULT_SIZE, models_in_use(settings), settings)
    assert estimate.cost_usd is None and estimate.high_usd == 0.0
    assert estimate.as_dict()["cost_usd"] is None and estimate.calls == 39


def test_the_estimator_measures_once_per_ttl(store: JobStore) -> None:
    now = [0.0]
    estimator = Estimator(store, openai_settings(), ttl=60, clock=lambda: now[0])
    assert estimator.estimate(1).size.source == "default"
    stored_report(store, [(1000, 100)] * 13)
    now[0] = 59
    assert estimator.estimate(1).size.source == "default"  # cached: no query
    now[0] = 60
    size = estimator.estimate(1).size
    assert size.source == "history" and size.input_tokens_per_call == 1000
