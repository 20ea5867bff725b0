"""The report's canvas of tasks, the errback for tasks that die without a word, and the retry
schedule of a task and of one provider call."""

from __future__ import annotations

import random

import pytest

from config import Settings
from tests.conftest import RedisServer, make_settings
from worker import tasks
from worker.celery_setup import LOST_TASK_NAME, create_celery, step_task_id
from worker.pipeline import (
    PLAN_STEP,
    SECTIONS,
    SYNTHESIS_STEP,
    TOTAL_STEPS,
    critical_path,
    depends_on,
    report_stages,
    step_labels,
)
from worker.providers.base import backoff_delay
from worker.tasks import retry_delay


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for retries, ceiling in [(0, 2), (1, 4), (2, 8), (3, 16)]:
        delays = [backoff_delay(retries, 2, 300, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len({round(d, 3) for d in delays}) > 100  # jittered, not a fixed value
    assert all(150 <= backoff_delay(12, 2, 300, rng) <= 300 for _ in range(100))


def test_a_job_retry_waits_at_least_what_the_provider_asked_but_never_past_the_cap() -> None:
    assert all(30 <= retry_delay(0, 2, 300, retry_after=30) <= 33 for _ in range(100))
    assert all(1 <= retry_delay(0, 2, 300) <= 2 for _ in range(100))
    assert retry_delay(0, 2, 300, retry_after=3600) == 300


@pytest.mark.parametrize("parallelism", [1, 2, 3, 5, 11, 16])
def test_report_stages_run_every_step_once(parallelism: int) -> None:
    stages = report_stages(parallelism)
    keys = [key for stage in stages for batch in stage for key in batch]
    assert sorted(keys) == sorted(key for key, _ in step_labels())
    assert stages[0] == [(PLAN_STEP,)] and stages[-1] == [(SYNTHESIS_STEP,)]
    if parallelism == 1:
        assert len(stages) == TOTAL_STEPS  # one step at a time, each seeing all before it
    else:
        assert stages == [[(PLAN_STEP,)], [tuple(s.key for s in SECTIONS)], [(SYNTHESIS_STEP,)]]


@pytest.mark.parametrize("parallelism", [1, 2, 5, 11, 16])
def test_every_step_runs_after_the_steps_its_prompt_is_built_from(parallelism: int) -> None:
    """A step's inputs (`depends_on`) are finished before it starts: in an earlier stage, or, one
    step at a time, earlier in its own batch (a batch of several steps writes them at once)."""
    finished: set[str] = set()
    for stage in report_stages(parallelism):
        for batch in stage:
            for index, key in enumerate(batch):
                before = set(batch[:index]) if parallelism == 1 else set()
                assert set(depends_on(key, parallelism)) <= finished | before, (key, stage)
        finished |= {key for batch in stage for key in batch}


def test_a_report_waits_for_three_calls_in_a_row_and_its_sections_only_for_the_plan() -> None:
    """Issue 20: one report alone waits for its critical path, by default the plan, every
    section at once, then the summary; no section waits for the snapshot or another section."""
    default = Settings.model_fields["report_parallelism"].default
    assert default >= len(SECTIONS) and critical_path(default) == 3
    assert all(depends_on(s.key, default) == (PLAN_STEP,) for s in SECTIONS)
    assert set(depends_on(SYNTHESIS_STEP, default)) == {s.key for s in SECTIONS}
    assert critical_path(1) == TOTAL_STEPS and critical_path(5) == 1 + 3 + 1


def test_the_workflow_leaves_out_finished_batches_and_always_stores_the_report() -> None:
    celery = create_celery(make_settings())
    job_id = "8a2b5d4e-0000-4000-8000-000000000000"
    with celery.connection_for_write():
        fresh = tasks.report_workflow(job_id, set(), 11)
        resumed = tasks.report_workflow(job_id, {PLAN_STEP, "snapshot", "problem", "team"}, 11)
        finished = tasks.report_workflow(job_id, {key for key, _ in step_labels()}, 11)
        in_sequence = tasks.report_workflow(job_id, {PLAN_STEP, "snapshot"}, 1)

    def stages(workflow) -> list[list]:  # type: ignore[no-untyped-def]
        """The chain's stages as lists of task signatures (Celery makes a group and the task after
        it a chord: its header, then its body)."""
        out = []
        for step in workflow.tasks if workflow.subtask_type == "chain" else [workflow]:
            out.append(list(getattr(step, "tasks", [step])))
            if hasattr(step, "body"):
                out.append([step.body])
        return out

    def shape(workflow) -> list[list[str]]:  # type: ignore[no-untyped-def]
        return [[t.options["task_id"] for t in stage] for stage in stages(workflow)]

    # Three tasks in a chain: the plan, the sections (one task writes them at once), the summary.
    assert shape(fresh) == [[f"{job_id}:plan"], [f"{job_id}:snapshot"], [f"{job_id}:synthesis"]]
    # The sections' task again, for the sections not stored yet (it skips the stored ones).
    assert shape(resumed) == [[f"{job_id}:snapshot"], [f"{job_id}:synthesis"]]
    assert shape(finished) == [[f"{job_id}:synthesis"]]
    assert shape(in_sequence)[0] == [f"{job_id}:problem"] and len(shape(in_sequence)) == TOTAL_STEPS - 2
    assert all(t.options["link_error"] for stage in stages(fresh) for t in stage)


def test_a_task_the_hard_time_limit_killed_fails_its_job_and_a_redis_error_leaves_it_live(
    settings: Settings, clean_redis: RedisServer
) -> None:
    from celery.exceptions import TimeLimitExceeded

    celery = create_celery(settings)
    store = celery.job_store
    killed, stranded = store.create_job("Slow Step Inc"), store.create_job("Stranded Ltd")
    celery.backend.mark_as_failure(step_task_id(killed.id, "market"), TimeLimitExceeded(600))
    celery.backend.mark_as_failure(step_task_id(stranded.id, "market"), ConnectionError("Redis went away"))

    celery.tasks[LOST_TASK_NAME](step_task_id(killed.id, "market"))
    celery.tasks[LOST_TASK_NAME](step_task_id(stranded.id, "market"))

    failed = store.get_job(killed.id)
    assert failed.state == "FAILURE" and "TASK_TIME_LIMIT" in failed.error
    assert store.get_job(stranded.id).state == "PENDING"  # the sweep will queue it again
