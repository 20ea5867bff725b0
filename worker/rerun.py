"""Cheap re-runs: a new version of a company's report (a job whose `previous_job_id` names the
version before) pays only for the steps whose sources changed.

Right after a re-run's sources are gathered, every step whose sources (`Research.for_step`: the
same numbers, addresses, titles and texts) are those the version before rested on is stored as
the version before's text, unpaid and marked `unchanged_since`; the canvas then skips it like
any finished step. The summary is kept too when every section's sources are unchanged, since its
prompt is only the sections. Pages come back cheaply too: the fetcher asks with the validators
of its page cache (`worker.sources.page_cache`).

No Celery and no Flask here: `worker.report_job.write_batch` calls these with its job store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from worker.models import JobState
from worker.pipeline import PLAN_STEP, SECTIONS, SYNTHESIS_STEP, Checkpoint
from worker.research import Material, Research
from worker.sources.citations import Source

if TYPE_CHECKING:
    from worker.models import Job
    from worker.store import JobStore

logger = logging.getLogger(__name__)


def previous_version(store: JobStore, job: Job) -> tuple[Job, Research, dict[str, Checkpoint]] | None:
    """The finished version a re-run builds on, with its sources and steps; None for a first run,
    or when the version before did not finish or kept no sources."""
    if not job.previous_job_id:
        return None
    previous = store.get_job(job.previous_job_id)
    if previous is None or previous.state != JobState.SUCCESS:
        return None
    research = store.load_research(previous.id)
    if research is None:
        return None
    return previous, research, store.load_checkpoints(previous.id)


def material_and_anchor(store: JobStore, job: Job) -> tuple[Material, str | None]:
    """What a job reads as the analyst's material, and the website that only says which company
    it is about (`gather_research`'s `anchor`).

    A re-run names its company by the website (`Job.website`, or the version before's company
    website when it has none), so that its searches are anchored as before and it never asks
    again which company is meant. That website is read as the analyst's material only if the
    version before read it so: otherwise it would be a new source, numbered first, and every
    section's sources would differ from the version before's."""
    material = store.load_material(job.id)
    found = previous_version(store, job)
    if found is None:
        return material, None
    _previous, before, _steps = found
    if not material.website:
        return material, before.company_website
    if any(source.kind == "provided" and source.url for source in before.sources):
        return material, None
    return replace(material, website=None), material.website


def keep_unchanged_steps(
    store: JobStore, job: Job, research: Research, done: Mapping[str, Checkpoint]
) -> dict[str, Checkpoint]:
    """Store, as `job`'s own unpaid steps, the version before's steps whose sources are unchanged;
    returns `done` with them. A step with no sources at all is left to the pipeline, which writes
    it without a call; so is everything of a report that searched nothing (its sections rest on
    the model's knowledge, which a re-run is meant to ask again)."""
    done = dict(done)
    found = previous_version(store, job)
    if found is None or not research.searched:
        return done
    previous, before, steps = found
    if not before.searched:
        return done
    written = previous.finished_at or previous.created_at
    unchanged: dict[str, bool] = {}
    for key in (PLAN_STEP, *(section.key for section in SECTIONS)):
        sources = research.for_step(key)
        unchanged[key] = key in steps and fingerprint(sources) == fingerprint(before.for_step(key))
        if unchanged[key] and sources and key not in done:
            done[key] = _keep(store, job.id, steps[key], written)
    sections_unchanged = all(unchanged[section.key] for section in SECTIONS)
    if sections_unchanged and SYNTHESIS_STEP in steps and SYNTHESIS_STEP not in done:
        done[SYNTHESIS_STEP] = _keep(store, job.id, steps[SYNTHESIS_STEP], written)
    kept = [key for key, checkpoint in done.items() if checkpoint.unchanged_since is not None]
    logger.info("re-run of %s: %d steps kept without a model call: %s", previous.id, len(kept), kept)
    return done


def fingerprint(sources: Sequence[Source]) -> tuple[tuple[object, ...], ...]:
    """What a step's sources must share with the version before's for its text to be kept: the
    numbers its citations use, and each source's address, title, kind and text (not the day it was
    read, nor a date the search engine gave)."""
    return tuple((s.number, s.url, s.title, s.kind, s.excerpt) for s in sources)


def _keep(store: JobStore, job_id: str, before: Checkpoint, written: datetime) -> Checkpoint:
    checkpoint = Checkpoint(
        key=before.key,
        text=before.text,
        provider=before.provider,
        model=before.model,
        citations_removed=before.citations_removed,
        paid=False,
        unchanged_since=before.unchanged_since or written,
    )
    store.save_checkpoint(job_id, checkpoint)
    return checkpoint
