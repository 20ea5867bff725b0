"""The research pipeline with a recording provider: no Celery, no network."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from worker.pipeline import (
    DEMO_BANNER,
    PLAN_STEP,
    SECTIONS,
    SYNTHESIS_STEP,
    TOTAL_STEPS,
    Checkpoint,
    Progress,
    run_pipeline,
)
from worker.providers.base import Completion, Prompt, Provider, TransientProviderError
from worker.providers.offline import OfflineProvider

EXPECTED_HEADINGS = [
    "Snapshot",
    "Problem & customer",
    "Product & why now",
    "Market size",
    "Business model",
    "Traction signals",
    "Team",
    "Competition",
    "Risks",
    "Bull & bear thesis",
    "Open diligence questions",
]


class RecordingProvider(Provider):
    """Answers every prompt with a marker naming its step; can fail on a chosen call."""

    name = "recording"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.prompts: list[Prompt] = []
        self.fail_on_call = fail_on_call

    @property
    def model(self) -> str:
        return "rec-1"

    def request(self, prompt: Prompt) -> Completion:
        if self.fail_on_call == len(self.prompts) + 1:
            self.fail_on_call = None
            raise TransientProviderError("simulated outage")
        self.prompts.append(prompt)
        return Completion(text=f"FINDING-{prompt.step}", provider=self.name, model=self.model)


def headings(markdown: str) -> list[str]:
    return [line[3:] for line in markdown.splitlines() if line.startswith("## ")]


def test_report_has_every_section_heading_in_order() -> None:
    report = run_pipeline("Acme", RecordingProvider())
    assert headings(report.markdown) == ["Summary", *EXPECTED_HEADINGS]
    assert report.markdown.startswith("# Acme: investment memo")
    assert report.calls == TOTAL_STEPS == len(SECTIONS) + 2


def test_every_prompt_names_the_startup_and_carries_earlier_findings() -> None:
    provider = RecordingProvider()
    run_pipeline("Zyx Robotics", provider)
    steps = [p.step for p in provider.prompts]
    assert steps == [PLAN_STEP, *[s.key for s in SECTIONS], SYNTHESIS_STEP]
    for index, prompt in enumerate(provider.prompts):
        assert "Zyx Robotics" in prompt.user
        for earlier in provider.prompts[1:index]:
            assert f"FINDING-{earlier.step}" in prompt.user, (prompt.step, earlier.step)
    # Every section prompt also carries the plan.
    for prompt in provider.prompts[1:-1]:
        assert f"FINDING-{PLAN_STEP}" in prompt.user


def test_progress_counts_every_step_then_done() -> None:
    seen: list[Progress] = []
    run_pipeline("Acme", RecordingProvider(), on_progress=seen.append)
    assert [p.step for p in seen] == [*range(1, TOTAL_STEPS + 1), TOTAL_STEPS]
    assert all(p.total == TOTAL_STEPS for p in seen)
    assert seen[4].label == "Market size"
    assert seen[-1].label == "Done"


def test_checkpoints_are_not_asked_again() -> None:
    saved: dict[str, Checkpoint] = {}
    first = RecordingProvider(fail_on_call=6)
    with pytest.raises(TransientProviderError):
        run_pipeline("Acme", first, on_checkpoint=lambda c: saved.__setitem__(c.key, c))
    assert len(saved) == 5

    second = RecordingProvider()
    report = run_pipeline("Acme", second, checkpoints=saved)
    assert report.calls == TOTAL_STEPS - 5
    assert {p.step for p in second.prompts}.isdisjoint(saved)
    # The resumed report still holds the text of the steps done before the failure.
    assert "FINDING-snapshot" in report.markdown


def test_demo_provider_report_carries_the_banner_and_a_competition_table() -> None:
    report = run_pipeline("Acme", OfflineProvider(step_delay=0))
    assert DEMO_BANNER in report.markdown
    assert "OPENAI_API_KEY" in report.markdown
    competition = report.markdown.split("## Competition", 1)[1].split("## ", 1)[0]
    assert "| Competitor |" in competition and "|---|" in competition
    risks = report.markdown.split("## Risks", 1)[1].split("## ", 1)[0]
    assert all(level in risks for level in ("High", "Medium", "Low"))
    assert headings(report.markdown) == ["Summary", *EXPECTED_HEADINGS]


def test_real_provider_report_has_no_demo_banner() -> None:
    assert DEMO_BANNER not in run_pipeline("Acme", RecordingProvider()).markdown


def test_demo_output_is_stable_for_a_name() -> None:
    at = lambda: datetime(2026, 1, 2, 3, 4, tzinfo=UTC)  # noqa: E731
    one = run_pipeline("Acme", OfflineProvider(step_delay=0), now=at).markdown
    two = run_pipeline("Acme", OfflineProvider(step_delay=0), now=at).markdown
    assert one == two and "Generated 2026-01-02 03:04 UTC" in one
    assert run_pipeline("Other", OfflineProvider(step_delay=0), now=at).markdown != one


def test_a_repeated_heading_from_the_model_is_dropped() -> None:
    class HeadingProvider(RecordingProvider):
        def request(self, prompt: Prompt) -> Completion:
            title = next((s.title for s in SECTIONS if s.key == prompt.step), "Summary")
            return Completion(text=f"## {title}\n\nBody.", provider="h", model="m")

    report = run_pipeline("Acme", HeadingProvider())
    assert headings(report.markdown) == ["Summary", *EXPECTED_HEADINGS]


class SlowProvider(RecordingProvider):
    """Takes a while per call and records how many calls were in flight at once."""

    def __init__(self, delay: float = 0.1, fail_step: str | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.fail_step = fail_step
        self.in_flight = 0
        self.most_in_flight = 0
        self.guard = threading.Lock()

    def request(self, prompt: Prompt) -> Completion:
        with self.guard:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if prompt.step == self.fail_step:
                raise TransientProviderError("simulated outage")
            return super().request(prompt)
        finally:
            with self.guard:
                self.in_flight -= 1


def test_parallel_sections_build_on_the_plan_and_snapshot_and_run_at_once() -> None:
    provider = SlowProvider(delay=0.1)
    seen: list[Progress] = []
    report = run_pipeline("Acme", provider, parallelism=5, on_progress=seen.append)
    assert headings(report.markdown) == ["Summary", *EXPECTED_HEADINGS]
    assert provider.most_in_flight == 5
    assert report.calls == TOTAL_STEPS
    for prompt in provider.prompts:
        if prompt.step not in (PLAN_STEP, "snapshot", SYNTHESIS_STEP):
            assert "FINDING-plan" in prompt.user and "FINDING-snapshot" in prompt.user
    synthesis = provider.prompts[-1]
    assert synthesis.step == SYNTHESIS_STEP and all(f"FINDING-{s.key}" in synthesis.user for s in SECTIONS)
    assert sorted(p.step for p in seen[:-1]) == list(range(1, TOTAL_STEPS + 1))


def test_a_failing_parallel_section_stops_the_report_and_keeps_what_finished() -> None:
    saved: dict[str, Checkpoint] = {}
    provider = SlowProvider(delay=0.05, fail_step="market")
    with pytest.raises(TransientProviderError):
        run_pipeline("Acme", provider, parallelism=3, on_checkpoint=lambda c: saved.__setitem__(c.key, c))
    assert "market" not in saved and {"plan", "snapshot"} <= set(saved)
    assert SYNTHESIS_STEP not in {p.step for p in provider.prompts}
    resumed = RecordingProvider()
    report = run_pipeline("Acme", resumed, checkpoints=saved, parallelism=3)
    assert report.calls == TOTAL_STEPS - len(saved)
    assert {p.step for p in resumed.prompts}.isdisjoint(saved)
