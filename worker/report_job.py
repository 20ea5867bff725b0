"""One batch of a report job, as a worker runs it: the job's row in, its steps checkpointed, and
with the summary the report stored.

No Celery here. `worker.tasks.write_steps` runs `write_batch` as a task and maps what it raises
to a retry of the task or a failure of the job; the canvas that orders the batches
(`worker.tasks.report_workflow`) is built from `remaining_stages`. The pipeline it drives
(`worker.pipeline`) knows nothing of the database: progress and checkpoints reach the job's row
through callbacks defined here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from worker.alerts import alert_watchers
from worker.companies import attach_company, record_change
from worker.fact_extraction import extract_facts
from worker.log_context import working_on
from worker.models import JobState
from worker.pipeline import (
    RESEARCH_LABEL,
    SYNTHESIS_STEP,
    TOTAL_STEPS,
    Checkpoint,
    Progress,
    Stage,
    assemble_report,
    report_stages,
    write_steps,
)
from worker.pricing import estimate_cost
from worker.providers import build_provider
from worker.providers.base import FatalProviderError, Prompt, Provider, ProviderError
from worker.rerun import keep_unchanged_steps, material_and_anchor
from worker.research import Material, Research, gather_research
from worker.sources.base import SearchConfigError
from worker.sources.identity import CompanyAmbiguous
from worker.spend import CapReached, CapUnenforceable, SpendGuard, describe_cap_stop

if TYPE_CHECKING:
    from config import Settings
    from worker.models import Job
    from worker.sources.base import SearchBackend
    from worker.sources.fetch import Fetcher
    from worker.store import JobStore

logger = logging.getLogger(__name__)

# A task that has taken down its worker process this many times (the OOM killer, a crash in a
# library) fails its job instead of being delivered again and again.
MAX_DELIVERIES = 5


class JobFailed(Exception):
    """The job has failed, and its row says why."""


class JobCancelled(Exception):
    """The job finished while this batch ran (a user cancelled it, or another batch failed it):
    stopped before the next provider call."""


class JobNeedsInput(Exception):
    """Several companies share the job's name: the job now asks which one (NEEDS_INPUT), before
    any model call. It resumes when the analyst chooses (`JobService.choose_company`)."""


class TimeLimitReached(Exception):
    """The batch ran past its own deadline (`TASK_TIME_LIMIT`'s soft limit), checked between steps."""


class WorkerResources(Protocol):
    """What a worker process builds once and shares between its tasks (`ReportsCelery` in a worker)."""

    settings: Settings
    providers: dict[str, Provider]

    @property
    def job_store(self) -> JobStore: ...

    @property
    def search_backend(self) -> SearchBackend | None: ...

    @property
    def fetcher(self) -> Fetcher: ...


def remaining_stages(done: Collection[str], parallelism: int) -> list[Stage]:
    """The stages a job still has to run: batches whose steps are all in `done` are left out; the
    summary's stage always runs, since it also stores the report."""
    stages = []
    for stage in report_stages(parallelism):
        batches = [b for b in stage if SYNTHESIS_STEP in b or not set(b) <= set(done)]
        if batches:
            stages.append(batches)
    return stages


def fail_job(store: JobStore, job_id: str, message: str) -> JobFailed:
    """Record why the job failed; returns the exception to raise."""
    store.mark_failed(job_id, error=message)
    return JobFailed(message)


def write_batch(
    job_id: str,
    keys: Sequence[str],
    *,
    resources: WorkerResources,
    parallelism: int = 1,
    worker: str = "",
    attempt: int = 1,
) -> None:
    """Write a batch of a job's steps (one after another, or with `parallelism` above 1 the
    sections at once), checkpointing each; the summary's batch also assembles and stores the
    report. The job's first batch reads its sources first.

    Before each provider attempt the job's cost cap is checked (`worker.spend`): when the next
    call could pass it, what the job has is stored as a partial report (`finish_at_cap`) and
    `CapReached` is raised, for the caller to end the canvas there.

    Raises `JobCancelled` when the job finished meanwhile, `JobFailed` once the row says why,
    `TimeLimitReached`, and the providers' errors (their failed attempts counted on the job), for
    the caller to retry or fail. `attempt` is this delivery's retry number, from 1."""
    with working_on(job_id):  # every line it and its threads log names the job
        store, settings = resources.job_store, resources.settings
        job = store.get_job(job_id)
        if job is None:
            logger.warning("job %s has no row; nothing to do", job_id)
            return
        if job.is_finished:
            # Cancelled, failed by another batch, or a duplicate delivery: never pay for it twice.
            logger.info("job %s is already %s; skipping %s", job_id, job.state, list(keys))
            if job.state == JobState.SUCCESS and SYNTHESIS_STEP in keys and not job.partial:
                # The summary's task again, after a crash between storing the report and telling
                # its watchers: finish that (both steps store nothing twice).
                record_version(resources, job_id)
            return

        deliveries = store.mark_started(job_id, worker=worker, attempt=attempt, task_key=keys[0])
        if deliveries > MAX_DELIVERIES:
            raise fail_job(
                store,
                job_id,
                f"This report stopped its worker process {deliveries - 1} times, so it was not tried again. "
                "The worker may be running out of memory: check the worker's log and memory, then retry.",
            )

        # The threads pool enforces no Celery time limit, so the batch keeps its own: checked before
        # every step, while each step is bounded by the providers' timeouts and retries.
        deadline = time.monotonic() + settings.task_soft_time_limit

        def report_progress(progress: Progress) -> None:
            if not store.mark_progress(job_id, progress):
                raise JobCancelled(job_id)
            if time.monotonic() > deadline and progress.starts_work:
                raise TimeLimitReached(job_id)

        cap = job.max_cost_usd if job.max_cost_usd is not None else settings.max_cost_per_report_usd
        guard = SpendGuard(
            cap, job.cost_usd + job.unanswered_cost_usd, settings.llm_prices, settings.llm_max_output_tokens
        )

        def count_attempt(provider: Provider, prompt: Prompt) -> None:
            # The cap first: an attempt that could pass it is never sent (`worker.spend`).
            try:
                guard.reserve(provider, prompt)
            except CapUnenforceable as exc:
                raise fail_job(store, job_id, str(exc)) from None
            # Before it is sent: a call in flight at a crash is still on the books. And the last
            # moment to stop spending on a job that was cancelled while this batch waited its turn.
            if not store.count_call_sent(job_id):
                raise JobCancelled(job_id)

        def save_checkpoint(checkpoint: Checkpoint) -> None:
            cost = estimate_cost(
                settings.llm_prices, checkpoint.model, checkpoint.input_tokens, checkpoint.output_tokens
            )
            if guard.cap is not None and checkpoint.paid and not (checkpoint.input_tokens or checkpoint.output_tokens):
                cost = None  # no usage reported: booked at its worst case (`SpendGuard.settle`)
            store.save_checkpoint(job_id, checkpoint, guard.settle(cost))

        try:
            provider = build_provider(
                settings,
                down=job.down_providers,
                on_down=lambda entry: store.add_provider_down(job_id, entry),
                cache=resources.providers,
            )
            done = store.load_checkpoints(job_id)
            research = store.load_research(job_id)
            if research is None:  # the job's first batch: read the sources every step rests on
                report_progress(Progress(step=1, total=TOTAL_STEPS, label=RESEARCH_LABEL))
                research = _research_the_company(resources, job)
                store.save_research(job_id, research)
                done = keep_unchanged_steps(store, job, research, done)  # a re-run's unchanged steps
            done = write_steps(
                job.startup,
                keys,
                provider,
                done,
                parallelism=parallelism,
                research=research,
                on_progress=report_progress,
                on_checkpoint=save_checkpoint,
                on_attempt=count_attempt,
            )
        except ProviderError as exc:
            store.add_failed_attempts(job_id, exc.failed_attempts)
            raise
        except CapReached:
            finish_at_cap(store, job, guard.cap or 0.0, is_demo=provider.is_demo, research=research)
            raise
        if SYNTHESIS_STEP in keys:
            report = assemble_report(
                job.startup, done, is_demo=provider.is_demo, generated_at=datetime.now(UTC), research=research
            )
            report_progress(Progress(step=TOTAL_STEPS, total=TOTAL_STEPS, label="Done", starts_work=False))
            attach_company(store, job_id, job.startup, research.company_website if research else job.website)
            stored = store.mark_succeeded(
                job_id,
                report_md=report.markdown,
                provider=report.provider_label,
                citations_removed=report.citations_removed,
                figures=report.figures,
                facts=extract_facts(report.markdown, research),
            )
            if stored:
                record_version(resources, job_id)


def record_version(resources: WorkerResources, job_id: str) -> None:
    """What a stored report changed against its company's version before, and its watchers told
    when that is material. Both store nothing twice, so running it again is harmless."""
    change = record_change(resources.job_store, job_id, threshold=resources.settings.change_threshold)
    if change is not None and change.material:
        logger.info("job %s changed company %s materially", job_id, change.company_id)
        alert_watchers(resources, change.id)


def finish_at_cap(store: JobStore, job: Job, cap: float, *, is_demo: bool, research: Research | None) -> None:
    """Store what a job that reached its cost cap has written as its report, marked partial: the
    steps not written are listed at its top. *Continue* with a higher cap resumes it from there
    (`worker.jobs.JobService.continue_report`)."""
    row = store.get_job(job.id) or job  # with what the steps in flight when it stopped added
    done = store.load_checkpoints(job.id)
    report = assemble_report(
        job.startup,
        done,
        is_demo=is_demo,
        generated_at=datetime.now(UTC),
        research=research,
        stopped_because=describe_cap_stop(cap, row.cost_usd),
    )
    step = min(len(done) + 1, TOTAL_STEPS)
    store.mark_progress(job.id, Progress(step=step, total=TOTAL_STEPS, label="Stopped at its cost cap"))
    store.mark_succeeded(
        job.id,
        report_md=report.markdown,
        provider=report.provider_label,
        citations_removed=report.citations_removed,
        figures=report.figures,
        partial=True,
        # What it has written is stated: a section not written leaves its facts unknown.
        facts=extract_facts(report.markdown, research),
    )
    logger.info("job %s stopped at its cost cap; not written: %s", job.id, report.unwritten)


def _research_the_company(resources: WorkerResources, job: Job) -> Research:
    """The job's sources; or, when its name matches several companies, what the job asked for:
    the question (`JobNeedsInput`), the search's first (`best`), or a failure that lists them."""
    store = resources.job_store
    take_best = job.on_ambiguous == "best"
    try:
        material, anchor = material_and_anchor(store, job)
        return gather_sources(resources, job.startup, material, take_best=take_best, anchor=anchor)
    except CompanyAmbiguous as exc:
        if job.on_ambiguous == "fail":
            raise fail_job(store, job.id, f'{exc} Submit it again with "website" set to the one you mean.') from None
        store.mark_needs_input(job.id, [candidate.to_dict() for candidate in exc.candidates])
        raise JobNeedsInput(str(exc)) from None


def gather_sources(
    resources: WorkerResources,
    startup: str,
    material: Material,
    *,
    take_best: bool = False,
    anchor: str | None = None,
) -> Research:
    """The job's sources, with the worker's search backend and fetcher (the fetcher only when
    there is something to fetch)."""
    try:
        search = resources.search_backend
    except SearchConfigError as exc:
        raise FatalProviderError(str(exc), provider="search") from None
    fetcher = resources.fetcher if search is not None or material.website else None
    settings = resources.settings
    return gather_research(
        startup,
        material,
        search,
        fetcher,
        results_per_query=settings.search_results_per_query,
        max_age_days=settings.source_max_age_days,
        take_best=take_best,
        anchor=anchor,
    )
