"""The research pipeline as the worker runs it: each stage of `report_stages` after the one before,
the batches of a stage at once, each batch through `write_batch` (the function the Celery task
calls) over a real job store. The models are the offline demo provider, or the real OpenAI SDK
talking to the fake provider server. The worker's resources are the app a worker builds
(`create_celery`), never started: no broker, no worker here; tests/integration runs the canvas."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from tests.conftest import provider_env, wait_for
from tests.fakes.llm_server import FakeLLMServer, Reply
from webapp.rendering import render_report
from worker.celery_setup import ReportsCelery
from worker.models import JobState
from worker.pipeline import (
    DEMO_BANNER,
    LABELS,
    PLAN_STEP,
    SECTIONS,
    SYNTHESIS_STEP,
    TOTAL_STEPS,
    Checkpoint,
    assemble_report,
    demote_headings,
    sections_done_label,
    write_steps,
)
from worker.providers.base import Completion, FatalProviderError, Prompt, Provider, TransientProviderError
from worker.report_job import MAX_DELIVERIES, JobCancelled, JobFailed, remaining_stages, write_batch

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
    "Recent news",
]
TITLES = {PLAN_STEP: "Research plan", SYNTHESIS_STEP: "Summary", **{s.key: s.title for s in SECTIONS}}


def headings(markdown: str) -> list[str]:
    return [line[3:] for line in markdown.splitlines() if line.startswith("## ")]


def run_report(
    worker: ReportsCelery,
    job_id: str,
    parallelism: int | None = None,
    between_stages: Callable[[], None] = lambda: None,
) -> None:
    """What the canvas does with a job (`worker.tasks.report_workflow`): the stages it still has
    to run, one after another; the batches of a stage at once, each a task of its own (here a
    thread). A batch that fails does not stop the others of its stage, but the next stage never
    starts (a chord's body waits for its whole header); its first error is raised.
    `between_stages` runs before each stage."""
    parallelism = parallelism or worker.settings.report_parallelism
    done = set(worker.job_store.load_checkpoints(job_id))
    for batches in remaining_stages(done, parallelism):
        between_stages()
        with ThreadPoolExecutor(max_workers=len(batches)) as pool:
            futures = [
                pool.submit(write_batch, job_id, batch, resources=worker, parallelism=parallelism) for batch in batches
            ]
        errors = [future.exception() for future in futures if future.exception() is not None]
        if errors:
            raise errors[0]


def fake_llm_settings(server: FakeLLMServer) -> dict[str, object]:
    """OpenAI's SDK against the fake provider server."""
    return {key.lower(): value for key, value in provider_env(server, "openai").items()}


def with_fake_llm(
    build_worker: Callable[..., ReportsCelery], server: FakeLLMServer, **overrides: object
) -> ReportsCelery:
    return build_worker(**{**fake_llm_settings(server), **overrides})


def step_of(prompt: str) -> str:
    """Which step a prompt the fake server received was for."""
    if "Write a short research plan" in prompt:
        return PLAN_STEP
    if "Write the memo's summary" in prompt:
        return SYNTHESIS_STEP
    title = re.search(r"Now write the section “(.+?)”", prompt).group(1)  # type: ignore[union-attr]
    return next(s.key for s in SECTIONS if s.title == title)


class ProgressWatch:
    """Reads the job's row every few milliseconds, as a dashboard polls it, and keeps each change
    of its progress."""

    def __init__(self, worker: ReportsCelery, job_id: str) -> None:
        self.store, self.job_id = worker.job_store, job_id
        self.seen: list[tuple[int, int, str]] = []
        self.reads = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        while not self.stopped.is_set():
            job = self.store.get_job(self.job_id)
            if job.progress_step:  # 0 until the first step
                progress = (job.progress_step, job.progress_total, job.progress_label)
                if not self.seen or self.seen[-1] != progress:
                    self.seen.append(progress)
            self.reads += 1
            time.sleep(0.005)

    def catch_up(self) -> None:
        """Wait until the watch has read the row as it is now: a progress that the next stage
        overwrites in its first milliseconds is seen however loaded the machine is."""
        wanted = self.reads + 2  # the read under way may have begun before now
        wait_for(lambda: self.reads >= wanted, 10, "the progress watch to read the row")

    def __enter__(self) -> ProgressWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(0.05)  # the last write, seen
        self.stopped.set()
        self.thread.join()


def test_report_has_every_section_heading_in_order(demo: ReportsCelery) -> None:
    job = demo.job_store.create_job("Acme")
    run_report(demo, job.id)
    job = demo.job_store.get_job(job.id)
    assert job.state == JobState.SUCCESS
    assert headings(job.report_md) == ["Summary", *EXPECTED_HEADINGS]
    assert job.report_md.startswith("# Acme: investment memo")
    assert job.calls == job.calls_sent == TOTAL_STEPS == len(SECTIONS) + 2
    assert job.provider == "offline/demo"


def test_every_prompt_names_the_startup_and_carries_earlier_findings(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    worker = with_fake_llm(build_worker, fake_llm, report_parallelism=1)  # one step at a time: each sees all before
    run_report(worker, worker.job_store.create_job("Zyx Robotics").id)
    prompts = [r.prompt for r in fake_llm.requests]
    steps = [step_of(p) for p in prompts]
    assert steps == [PLAN_STEP, *[s.key for s in SECTIONS], SYNTHESIS_STEP]
    for index, prompt in enumerate(prompts):
        assert "Zyx Robotics" in prompt
        for earlier in steps[1:index]:
            assert f"### {TITLES[earlier]}\nFake analysis for:" in prompt, (steps[index], earlier)
    # Every section prompt also carries the plan.
    for prompt in prompts[1:-1]:
        assert "### Research plan\nFake analysis for:" in prompt


def test_progress_counts_every_step_then_done(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply.ok(delay=0.15))  # long enough for the watch to see every step
    worker = with_fake_llm(build_worker, fake_llm, report_parallelism=1)  # one step at a time: every step counted
    job_id = worker.job_store.create_job("Acme").id
    with ProgressWatch(worker, job_id) as watch:
        run_report(worker, job_id)
    labels = dict(LABELS)
    expected = [(n, TOTAL_STEPS, labels[key]) for n, key in enumerate(labels, start=1)]
    assert [p for p in watch.seen if p[2] != "Searching the web and reading sources"] == [
        *expected,
        (TOTAL_STEPS, TOTAL_STEPS, "Done"),
    ]
    assert expected[4][2] == "Market size"


def test_a_failed_step_resumes_from_the_checkpoints_without_paying_twice(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    fake_llm.script("openai", *[Reply.ok()] * 5, Reply.server_error(503))
    # No retries inside the call: the sixth step's error reaches the batch, as it does once a
    # provider's own retries are used up; one step at a time, so exactly five are done before it.
    worker = with_fake_llm(build_worker, fake_llm, llm_max_retries=0, report_parallelism=1)
    job_id = worker.job_store.create_job("Acme").id
    with pytest.raises(TransientProviderError):
        run_report(worker, job_id)
    saved = worker.job_store.load_checkpoints(job_id)
    assert set(saved) == {PLAN_STEP, *(s.key for s in SECTIONS[:4])}
    job = worker.job_store.get_job(job_id)
    assert (job.calls, job.retries, job.calls_sent) == (5, 1, 6)  # the failed attempt is on the books

    before = len(fake_llm.requests)
    run_report(worker, job_id)  # the task's retry, then the rest of the canvas
    asked = [step_of(r.prompt) for r in fake_llm.requests[before:]]
    assert set(asked).isdisjoint(saved) and len(asked) == TOTAL_STEPS - 5
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and job.calls == TOTAL_STEPS
    # The resumed report still holds the steps written before the failure.
    assert worker.job_store.load_checkpoints(job_id)["snapshot"].text in job.report_md


def test_a_retried_batch_skips_the_steps_it_had_finished(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    fake_llm.script("openai", Reply.ok(), Reply.ok(), Reply.server_error(503))  # the second section asked fails
    worker = with_fake_llm(build_worker, fake_llm, llm_max_retries=0)  # the error reaches the batch at once
    job_id = worker.job_store.create_job("Acme").id
    write_batch(job_id, (PLAN_STEP,), resources=worker)
    [sections] = remaining_stages({PLAN_STEP}, worker.settings.report_parallelism)[0]
    with pytest.raises(TransientProviderError):
        write_batch(job_id, sections, resources=worker, parallelism=worker.settings.report_parallelism)
    [failed] = [step_of(r.prompt) for r in fake_llm.requests if r.status == 503]
    # The sections under way when one failed were written and stored; the retry asks the others.
    stored = set(worker.job_store.load_checkpoints(job_id))
    assert PLAN_STEP in stored and failed not in stored and len(stored) >= 2
    before = len(fake_llm.requests)
    write_batch(job_id, sections, resources=worker, parallelism=worker.settings.report_parallelism, attempt=2)
    asked_again = [step_of(r.prompt) for r in fake_llm.requests[before:]]  # the task's retry
    assert failed in asked_again and set(asked_again).isdisjoint(stored)
    assert set(worker.job_store.load_checkpoints(job_id)) == {PLAN_STEP, *sections}
    assert worker.job_store.get_job(job_id).attempts == 2


def test_demo_provider_report_carries_the_banner_and_a_competition_table(demo: ReportsCelery) -> None:
    job_id = demo.job_store.create_job("Acme").id
    run_report(demo, job_id)
    markdown = demo.job_store.get_job(job_id).report_md
    assert DEMO_BANNER in markdown
    assert "OPENAI_API_KEY" in markdown
    competition = markdown.split("## Competition", 1)[1].split("## ", 1)[0]
    assert "| Competitor |" in competition and "|---|" in competition
    risks = markdown.split("## Risks", 1)[1].split("## ", 1)[0]
    assert all(level in risks for level in ("High", "Medium", "Low"))
    assert headings(markdown) == ["Summary", *EXPECTED_HEADINGS]


def test_real_provider_report_has_no_demo_banner(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    worker = with_fake_llm(build_worker, fake_llm)
    job_id = worker.job_store.create_job("Acme").id
    run_report(worker, job_id)
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and DEMO_BANNER not in job.report_md
    assert job.provider == "openai/gpt-5-mini"


def test_demo_output_is_stable_for_a_name(demo: ReportsCelery) -> None:
    def report(startup: str) -> str:
        job_id = demo.job_store.create_job(startup).id
        run_report(demo, job_id)
        markdown = demo.job_store.get_job(job_id).report_md
        assert re.search(r"^\*Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC by offline/demo\.\*$", markdown, re.MULTILINE)
        return re.sub(r"^\*Generated .*$", "", markdown, flags=re.MULTILINE)

    one, two = report("Acme"), report("Acme")
    assert one == two
    assert report("Other") != one


def test_a_repeated_heading_from_the_model_is_dropped() -> None:
    done = {
        key: Checkpoint(key=key, text=f"## {TITLES[key]}\n\nBody of {key}.", provider="p", model="m") for key in LABELS
    }
    report = assemble_report("Acme", done, is_demo=False, generated_at=datetime.now(UTC))
    assert headings(report.markdown) == ["Summary", *EXPECTED_HEADINGS]
    assert "Body of market." in report.markdown.split("## Market size", 1)[1]


def in_flight_at_most(requests: list, delay: float) -> int:  # type: ignore[type-arg]
    """The most requests the fake server held at once, each for at least `delay` seconds after it arrived."""
    arrivals = sorted(r.at for r in requests)
    return max(sum(1 for a in arrivals if a <= t < a + delay) for t in arrivals)


def test_every_section_builds_on_the_plan_alone_and_all_run_at_once(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    # Long enough that the eleven batches' starts (each a few writes to the database) fit in one
    # call, also with the suite's other processes on the same cores: at 0.8 s, ten of eleven did
    # once on PostgreSQL in a CI run.
    fake_llm.set_default("openai", Reply.ok(delay=2.0))
    # REPORT_PARALLELISM's default, every section at once; OPENAI_RPM's pacing (a call every
    # 60/RPM seconds) off, or it would hide how many calls the batches have in flight.
    worker = with_fake_llm(build_worker, fake_llm, openai_rpm=0)
    job_id = worker.job_store.create_job("Acme").id
    with ProgressWatch(worker, job_id) as watch:
        run_report(worker, job_id, between_stages=watch.catch_up)
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and headings(job.report_md) == ["Summary", *EXPECTED_HEADINGS]
    assert job.calls == TOTAL_STEPS
    assert in_flight_at_most(fake_llm.requests, 2.0) == len(SECTIONS)
    prompts = {step_of(r.prompt): r.prompt for r in fake_llm.requests}
    for key, prompt in prompts.items():
        if key not in (PLAN_STEP, SYNTHESIS_STEP):
            assert "### Research plan\n" in prompt
            assert not any(f"### {s.title}\n" in prompt for s in SECTIONS), key  # no section waits on another
    assert all(f"### {s.title}\n" in prompts[SYNTHESIS_STEP] for s in SECTIONS)
    assert [step_of(r.prompt) for r in fake_llm.requests][-1] == SYNTHESIS_STEP
    # Batches running at once report their steps in any order; the row's progress never goes back.
    steps = [step for step, _, _ in watch.seen]
    assert steps == sorted(steps) and steps[-1] == TOTAL_STEPS, watch.seen
    assert all(total == TOTAL_STEPS for _, total, _ in watch.seen)
    # As the sections finish, the row counts them (they all started at step 2).
    assert (TOTAL_STEPS, TOTAL_STEPS, sections_done_label(len(SECTIONS))) in watch.seen


def test_a_failing_section_leaves_the_others_to_finish_and_the_summary_to_wait(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply.ok(delay=0.05))
    fake_llm.script("openai", Reply.ok(), Reply.ok(), Reply.server_error(500))  # the second section asked
    worker = with_fake_llm(build_worker, fake_llm, llm_max_retries=0)  # the error reaches the batch at once
    job_id = worker.job_store.create_job("Acme").id
    with pytest.raises(TransientProviderError):
        run_report(worker, job_id)
    [failed] = [step_of(r.prompt) for r in fake_llm.requests if r.status == 500]
    # The sections under way finished and were stored; those not yet started were not asked.
    saved = set(worker.job_store.load_checkpoints(job_id))
    answered = {step_of(r.prompt) for r in fake_llm.requests if r.status == 200}
    assert saved == answered and PLAN_STEP in saved and failed not in saved
    assert SYNTHESIS_STEP not in {step_of(r.prompt) for r in fake_llm.requests}
    job = worker.job_store.get_job(job_id)
    assert job.calls == len(saved) and job.retries == 1  # the failed attempt is on the books

    before = len(fake_llm.requests)
    run_report(worker, job_id)
    asked = [step_of(r.prompt) for r in fake_llm.requests[before:]]
    assert set(asked[:-1]) == set(LABELS) - saved - {SYNTHESIS_STEP} and asked[-1] == SYNTHESIS_STEP
    assert len(asked) == len(set(asked))  # none twice
    job = worker.job_store.get_job(job_id)
    assert job.state == JobState.SUCCESS and job.calls == TOTAL_STEPS


class QueuedProvider(Provider):
    """A provider behind a busy rate limiter: each slot comes 0.03 s after it is asked for.
    Counts how many of one report's calls wait for a slot at once, and how many are in flight."""

    name, label = "queued", "Queued"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = self.most_waiting = self.in_flight = self.most_in_flight = 0

    @property
    def model(self) -> str:
        return "queued-1"

    def throttle(self, prompt: Prompt) -> None:
        with self.lock:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        time.sleep(0.03)
        with self.lock:
            self.waiting -= 1

    def request(self, prompt: Prompt) -> Completion:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.8)
        with self.lock:
            self.in_flight -= 1
        return Completion(text=f"About {prompt.step}.", provider=self.name, model=self.model)


def test_a_report_s_sections_take_turns_at_the_rate_limiter_and_run_together() -> None:
    """One place at a time in the limiter's queue for each report (when many reports run, their
    calls alternate), while the calls themselves overlap."""
    provider = QueuedProvider()
    plan = Checkpoint(key=PLAN_STEP, text="The plan.", provider="queued", model="queued-1")
    done = write_steps("Acme", [s.key for s in SECTIONS], provider, {PLAN_STEP: plan}, parallelism=len(SECTIONS))
    assert set(done) == {PLAN_STEP, *(s.key for s in SECTIONS)}
    assert provider.most_waiting == 1
    assert provider.most_in_flight == len(SECTIONS)  # 11 slots 0.03 s apart, each call 0.8 s long


def test_sections_written_a_few_at_a_time_stop_starting_after_a_failure(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    """REPORT_PARALLELISM below the sections' count: the batch writes that many at once, and a
    failure stops the sections not yet started (as one at a time stops at the failed step)."""
    fake_llm.set_default("openai", Reply.ok(delay=0.3))
    fake_llm.script("openai", Reply.ok(), Reply.server_error(500))  # the first section asked
    worker = with_fake_llm(build_worker, fake_llm, llm_max_retries=0, report_parallelism=3, openai_rpm=0)
    job_id = worker.job_store.create_job("Acme").id
    with pytest.raises(TransientProviderError):
        run_report(worker, job_id)
    assert in_flight_at_most(fake_llm.requests[1:], 0.3) <= 3
    assert len(fake_llm.requests) <= 1 + 3  # the plan, then the first three sections at most
    before = len(fake_llm.requests)
    run_report(worker, job_id)
    assert worker.job_store.get_job(job_id).state == JobState.SUCCESS
    assert in_flight_at_most(fake_llm.requests[before:], 0.3) == 3


def test_a_fatal_error_propagates_and_its_attempt_is_counted(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    fake_llm.script("openai", Reply.ok(), Reply.unauthorized())
    worker = with_fake_llm(build_worker, fake_llm)
    job_id = worker.job_store.create_job("Locked Out Ltd").id
    with pytest.raises(FatalProviderError, match="OPENAI_API_KEY"):
        run_report(worker, job_id)
    job = worker.job_store.get_job(job_id)
    # The refused call was a section: those asked at the same moment were answered, no later one asked.
    assert 2 <= len(fake_llm.requests) <= 1 + len(SECTIONS)
    assert (job.calls, job.retries) == (len(fake_llm.requests) - 1, 1)
    assert job.state == JobState.PROGRESS  # the task, not the batch, decides what a failure means


@pytest.fixture
def hung_call(fake_llm: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The second call never answers (until the server stops)."""
    fake_llm.script("openai", Reply.ok(), Reply.never_answers())
    yield fake_llm


def test_a_cancelled_job_stops_before_its_next_call(
    build_worker: Callable[..., ReportsCelery], hung_call: FakeLLMServer
) -> None:
    # A short timeout and one retry: the retry is the next call the cancel must stop.
    worker = with_fake_llm(build_worker, hung_call, llm_timeout=1.0, llm_max_retries=1)
    store = worker.job_store
    job_id = store.create_job("Never Mind GmbH").id
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            run_report(worker, job_id)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: len(hung_call.requests) >= 2, 10, "the second call")
    assert store.mark_cancelled(job_id, by="admin")
    thread.join(timeout=20)
    assert outcome and isinstance(outcome[0], JobCancelled)
    # The sections start together: those asked before the cancel were answered; the one that
    # hung timed out and was not tried again; none was asked after it.
    asked = [step_of(r.prompt) for r in hung_call.requests]
    assert len(asked) == len(set(asked)), asked
    job = store.get_job(job_id)
    assert job.state == JobState.REVOKED and job.calls_sent == len(asked) and job.calls == len(asked) - 1

    run_report(worker, job_id)  # a task delivered after the cancel: skipped, not paid for
    assert len(hung_call.requests) == len(asked)


def test_a_batch_that_keeps_killing_its_worker_fails_the_job(demo: ReportsCelery) -> None:
    store = demo.job_store
    job_id = store.create_job("Memory Hog Ltd").id
    for _ in range(MAX_DELIVERIES):  # each delivery began the batch, then took the process down
        store.mark_started(job_id, worker="w1@test", attempt=1, task_key=PLAN_STEP)
    with pytest.raises(JobFailed, match="stopped its worker process 5 times"):
        write_batch(job_id, (PLAN_STEP,), resources=demo)
    job = store.get_job(job_id)
    assert job.state == JobState.FAILURE and "memory" in job.error and job.calls_sent in (0, None)


def test_a_model_s_own_headings_stay_inside_its_section(
    build_worker: Callable[..., ReportsCelery], fake_llm: FakeLLMServer
) -> None:
    answer = "## Findings\n\nAcme sells robot arms.\n\n### Customers\n\nLogistics firms.\n\nRisks\n-----\n\nFew."

    def snapshot(prompt: str) -> str | None:
        return answer if "Now write the section “Snapshot”" in prompt else None

    fake_llm.set_default("openai", Reply.answering(snapshot))
    worker = with_fake_llm(build_worker, fake_llm)
    job_id = worker.job_store.create_job("Acme").id
    run_report(worker, job_id)
    markdown = worker.job_store.get_job(job_id).report_md
    assert headings(markdown) == ["Summary", *EXPECTED_HEADINGS]
    body = markdown.split("## Snapshot\n\n", 1)[1].split("\n## ", 1)[0]
    assert body.startswith("### Findings\n\nAcme sells robot arms.\n\n#### Customers\n\nLogistics firms.")
    assert "### Risks" in body  # an underlined heading too
    assert [entry.title for entry in render_report(markdown).toc] == ["Summary", *EXPECTED_HEADINGS]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Top\n\n## Next\n\n#### Deep", "### Top\n\n#### Next\n\n###### Deep"),
        ("## A\n\n### B", "### A\n\n#### B"),
        ("### Already under\n\n#### it", "### Already under\n\n#### it"),
        ("#### Low\n\n##### Lower", "#### Low\n\n##### Lower"),
        ("# A\n\n###### F", "### A\n\n###### F"),  # never deeper than six
        ("No headings, a #hashtag and C# here.", "No headings, a #hashtag and C# here."),
        ("Title\n=====\n\nText.", "### Title\n\n\nText."),
        ("```\n## not a heading\n```\n\n## Real", "```\n## not a heading\n```\n\n### Real"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "| a | b |\n|---|---|\n| 1 | 2 |"),
        ("- item\n---\n\n## H", "- item\n---\n\n### H"),
    ],
)
def test_demoted_headings_keep_their_relative_levels(text: str, expected: str) -> None:
    assert demote_headings(text) == expected
