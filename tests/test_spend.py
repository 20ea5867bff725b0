"""A report's cost cap (issue 18): the guard that every provider attempt asks first, with the
attempts of sections written at once in flight together; the partial report it leaves; and a job
stopped at its cap and continued, through `write_batch` over a real job store with the OpenAI SDK
against the fake provider server (tests/test_pipeline.py drives reports the same way)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.test_pipeline import TITLES, run_report, step_of, with_fake_llm
from worker.celery_setup import ReportsCelery
from worker.facts import load_facts
from worker.jobs import JobService, NotAllowed, NotContinuable
from worker.models import JobState
from worker.pipeline import (
    NOT_WRITTEN,
    PLAN_STEP,
    SECTIONS,
    SYNTHESIS_STEP,
    TOTAL_STEPS,
    Checkpoint,
    assemble_report,
    step_labels,
    step_prompt,
    write_steps,
)
from worker.pricing import estimate_cost
from worker.providers.base import Completion, Prompt, Provider
from worker.report_job import JobFailed
from worker.spend import CapReached, CapUnenforceable, SpendGuard, worst_case_cost

#: One dollar per thousand tokens, in and out: a call's cost is easy to read in the tests.
PRICES = {"slow-1": (1000.0, 1000.0)}
PROMPT = Prompt(system="s" * 400, user="u" * 3600, step="snapshot", startup="Acme")  # 1,001 tokens in


class SlowProvider(Provider):
    """Answers after `delay`, counting its calls and the most in flight at once."""

    name, label = "slow", "Slow"

    def __init__(self, delay: float = 0.3, model: str = "slow-1") -> None:
        self.delay, self._model = delay, model
        self.max_output_tokens = 999
        self.lock = threading.Lock()
        self.calls = self.in_flight = self.most_in_flight = 0

    @property
    def model(self) -> str:
        return self._model

    def request(self, prompt: Prompt) -> Completion:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        return Completion(
            text=f"About {prompt.step}.", provider=self.name, model=self.model, input_tokens=500, output_tokens=500
        )


def test_an_attempt_reserves_its_worst_case_and_is_refused_when_it_could_pass_the_cap() -> None:
    provider = SlowProvider()
    worst = worst_case_cost(PRICES, provider, PROMPT, 2000)
    assert worst == pytest.approx((1001 + 999) / 1000)  # prompt tokens in, max_output_tokens out
    guard = SpendGuard(cap=4.4, spent=0.5, prices=PRICES, default_max_output=2000)
    guard.reserve(provider, PROMPT)
    assert guard.committed == pytest.approx(2.5)
    with pytest.raises(CapReached) as stopped:  # 0.5 spent + 2.0 in flight + 2.0 next > 4.4
        guard.reserve(provider, PROMPT)
    assert stopped.value.spent == pytest.approx(2.5) and guard.committed == pytest.approx(2.5)
    guard.settle(1.0)  # the call in flight cost 1.0: its reservation gives way
    assert guard.committed == pytest.approx(1.5)
    guard.reserve(provider, PROMPT)  # 1.5 + 2.0 ≤ 4.4


def test_a_failed_attempt_stays_counted_and_its_retry_reserves_again() -> None:
    provider = SlowProvider()
    guard = SpendGuard(cap=5.0, spent=0.0, prices=PRICES, default_max_output=2000)
    guard.reserve(provider, PROMPT)  # fails (a timeout, billed all the same)
    guard.reserve(provider, PROMPT)  # its retry
    with pytest.raises(CapReached):
        guard.reserve(provider, PROMPT)
    guard.settle(1.0)
    assert guard.committed == pytest.approx(2.0 + 1.0)  # the failed attempt at its worst case, the retry's cost


def test_no_cap_no_price_and_the_demo() -> None:
    SpendGuard(cap=None, spent=0.0, prices={}, default_max_output=2000).reserve(SlowProvider(), PROMPT)
    capped = SpendGuard(cap=1.0, spent=0.0, prices=PRICES, default_max_output=2000)
    with pytest.raises(CapUnenforceable, match="'unpriced-9' has no price in LLM_PRICES"):
        capped.reserve(SlowProvider(model="unpriced-9"), PROMPT)
    demo = SlowProvider(model="unpriced-9")
    demo.is_demo = True
    for _ in range(5):
        capped.reserve(demo, PROMPT)  # the offline demo costs nothing


def test_sections_written_at_once_never_have_more_in_flight_than_the_cap_allows() -> None:
    """Eleven sections in threads of their own: only those whose worst cases fit under the cap
    together are sent; the rest are not, and the ones sent finish and are checkpointed."""
    provider = SlowProvider(delay=0.3)
    plan = Checkpoint(key=PLAN_STEP, text="The plan.", provider="slow", model="slow-1")
    keys = [s.key for s in SECTIONS]
    worst = [worst_case_cost(PRICES, provider, step_prompt("Acme", key, {PLAN_STEP: plan}, 11), 2000) for key in keys]
    guard = SpendGuard(cap=3.5 * max(worst), spent=0.0, prices=PRICES, default_max_output=2000)
    saved: list[str] = []

    def save(checkpoint: Checkpoint) -> None:
        saved.append(checkpoint.key)
        guard.settle(estimate_cost(PRICES, checkpoint.model, checkpoint.input_tokens, checkpoint.output_tokens))

    with pytest.raises(CapReached):
        write_steps(
            "Acme",
            keys,
            provider,
            {PLAN_STEP: plan},
            parallelism=len(SECTIONS),
            on_attempt=guard.reserve,
            on_checkpoint=save,
        )
    assert 3 <= provider.calls <= guard.cap // min(worst) < len(SECTIONS)
    assert provider.most_in_flight == provider.calls  # all at once, as many as fit
    assert len(saved) == provider.calls  # every call sent was answered and stored; none after the cap
    assert guard.committed <= guard.cap


def test_a_partial_report_lists_what_it_lacks_at_its_top() -> None:
    done = {
        key: Checkpoint(key=key, text=f"Text of {key}.", provider="slow", model="slow-1")
        for key in (PLAN_STEP, SECTIONS[0].key, SECTIONS[1].key)
    }
    report = assemble_report(
        "Acme", done, is_demo=False, generated_at=datetime.now(UTC), stopped_because="it reached its cap."
    )
    missing = [TITLES[key] for key, _ in step_labels() if key not in done]
    assert report.unwritten == missing and "Summary" in missing
    top = report.markdown.split("## Summary")[0]
    assert f"Not written: {', '.join(missing)}. It stopped because it reached its cap." in top
    assert report.markdown.count(NOT_WRITTEN) == len(missing)
    assert f"Text of {SECTIONS[1].key}." in report.markdown


def sections_text(markdown: str) -> str:
    return markdown.split("## Summary", 1)[1]


def test_a_job_stopped_at_its_cap_is_partial_and_continues_without_paying_twice(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    """The acceptance of issue 18 at the level of the batches: a cap reached mid-report leaves a
    partial report (listed, resumable), no call is made after the cap, the spend stays under the
    cap; Continue with a higher cap asks only for the steps not written."""
    fake_llm.set_default("openai", Reply.ok(delay=0.2))
    worker = with_fake_llm(build_worker, fake_llm, llm_prices={"gpt-5-mini": (1000.0, 1000.0)})
    job_id = worker.job_store.create_job("Acme", max_cost_usd=6.0).id
    with pytest.raises(CapReached):  # what the task turns into the end of the canvas (`Ignore`)
        run_report(worker, job_id)

    job = worker.job_store.get_job(job_id)
    written = set(worker.job_store.load_checkpoints(job_id))
    assert job.state == JobState.SUCCESS and job.partial is True
    assert PLAN_STEP in written and SYNTHESIS_STEP not in written and 1 <= len(written) - 1 < len(SECTIONS)
    assert len(fake_llm.requests) == job.calls_sent == job.calls == len(written)  # nothing sent past the cap
    assert 0 < job.cost_usd <= 6.0
    missing = [TITLES[key] for key, _ in step_labels() if key not in written]
    assert f"Not written: {', '.join(missing)}." in job.report_md.split("## Summary")[0]
    assert "cost cap of $6.00" in job.report_md
    facts = {fact.key: fact for fact in load_facts(job.facts) or []}
    assert facts, "a partial report keeps the key facts it states, for the comparison"
    assert facts["recommendation"].value is None  # no summary was written

    # Continue: refused at or below the spend, and for someone else; then it resumes.
    service = JobService(worker.job_store, worker)
    owner = type("Owner", (), {"username": "ann", "is_admin": True})()
    with pytest.raises(NotContinuable, match="above the"):
        service.continue_report(job_id, job.cost_usd, owner)
    stranger = type("Stranger", (), {"username": "bob", "is_admin": False})()
    with pytest.raises(NotAllowed):
        service.continue_report(job_id, 100.0, stranger)
    assert worker.job_store.continue_partial(job_id, 100.0)  # what continue_report does, without the queue
    continued = worker.job_store.get_job(job_id)
    assert continued.state == JobState.PENDING and continued.report_md == job.report_md  # kept until replaced
    assert not worker.job_store.continue_partial(job_id, 200.0)  # once

    before = len(fake_llm.requests)
    run_report(worker, job_id)
    asked = [step_of(r.prompt) for r in fake_llm.requests[before:]]
    assert sorted(asked) == sorted(set(key for key, _ in step_labels()) - written)  # each missing step, once
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and not job.partial and job.calls == TOTAL_STEPS
    assert NOT_WRITTEN not in job.report_md and "Partial report" not in job.report_md
    assert job.max_cost_usd == 100.0 and job.cost_usd <= 100.0


def test_answers_without_usage_are_booked_at_their_worst_case_so_the_cap_still_holds(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    """An OpenAI-compatible server that reports no usage: each step used to cost nothing, every
    reservation was freed, and a capped report was written whole at any price."""
    fake_llm.set_default("openai", Reply(no_usage=True))
    worker = with_fake_llm(build_worker, fake_llm, llm_prices={"gpt-5-mini": (1000.0, 1000.0)})
    job_id = worker.job_store.create_job("Acme", max_cost_usd=6.0).id
    with pytest.raises(CapReached):
        run_report(worker, job_id, parallelism=1)  # one call at a time: no other call's reservation stops it
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and job.partial is True
    assert len(fake_llm.requests) == job.calls < TOTAL_STEPS
    assert 0 < job.cost_usd <= 6.0 and job.unpriced_calls == 0  # the steps' worst cases, on the books


def test_a_capped_job_with_an_unpriced_model_fails_before_any_call(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    worker = with_fake_llm(build_worker, fake_llm, openai_model="no-price-model", max_cost_per_report_usd=5.0)
    job_id = worker.job_store.create_job("Acme").id  # the setting's cap applies to a job without its own
    with pytest.raises(JobFailed):
        run_report(worker, job_id)
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.FAILURE and "no price in LLM_PRICES" in job.error
    assert fake_llm.requests == []
