"""Cheap re-runs: a new version of a company's report (a job whose `previous_job_id` names the
version before) pays only for the steps whose sources changed.

Right after a re-run's sources are gathered, every step whose sources (`Research.for_step`: the
same addresses, titles and texts) are those the version before rested on is stored as the version
before's text, unpaid and marked `unchanged_since`; the canvas then skips it like any finished
step. A search that returns the same pages in another order numbers them anew: the kept text's
citations are renumbered to match. The summary is kept too when every section's sources are unchanged, since its
prompt is only the sections. Pages come back cheaply too: the fetcher asks with the validators
of its page cache (`worker.sources.page_cache`).

No Celery and no Flask here: `worker.report_job.write_batch` calls these with its job store.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from worker.changes import parse_key_facts
from worker.models import JobState
from worker.pipeline import KEY_FACTS, PLAN_STEP, SECTIONS, SYNTHESIS_STEP, Checkpoint
from worker.providers.offline import OfflineProvider
from worker.research import Material, Research
from worker.sources.citations import Source, check_citations, cited_numbers, renumber_citations

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
    the model's knowledge, which a re-run is meant to ask again), and a step the offline demo
    wrote: its filler must not outlive a switch to a real provider, and costs nothing to write."""
    done = dict(done)
    found = previous_version(store, job)
    if found is None or not research.searched:
        return done
    previous, before, written_before = found
    if not before.searched:
        return done
    steps = {key: step for key, step in written_before.items() if step.provider != OfflineProvider.name}
    written = previous.finished_at or previous.created_at
    numbers = renumbering(before.sources, research.sources)
    unchanged: dict[str, bool] = {}

    def keep(key: str) -> None:
        done[key] = _keep(store, job.id, steps[key], written, numbers, research)

    for key in (PLAN_STEP, *(section.key for section in SECTIONS)):
        sources = research.for_step(key)
        unchanged[key] = key in steps and same_sources(before.for_step(key), sources) and asked_as_now(steps[key])
        if unchanged[key] and sources and key not in done:
            keep(key)
    sections_unchanged = all(unchanged[section.key] for section in SECTIONS)
    if sections_unchanged and SYNTHESIS_STEP in steps and SYNTHESIS_STEP not in done:
        keep(SYNTHESIS_STEP)
    kept = [key for key, checkpoint in done.items() if checkpoint.unchanged_since is not None]
    logger.info("re-run of %s: %d steps kept without a model call: %s", previous.id, len(kept), kept)
    return done


def asked_as_now(step: Checkpoint) -> bool:
    """False for a Snapshot whose Key facts list lacks a line its brief asks for now: written before
    the line was asked for (issue 18 added five), it is written anew, once, so that the report's key
    facts (`worker.fact_extraction`) are not unknown for as long as its sources stay the same."""
    if step.key != SECTIONS[0].key:
        return True
    listed = [fact for fact in parse_key_facts(step.text, {}).values() if fact.line]
    return not listed or len(listed) == len(KEY_FACTS)


def source_key(source: Source) -> tuple[str | None, str, str, str]:
    """What makes two sources the same for a kept text: the address, title, kind and text (not the
    number, the day it was read, nor a date the search engine gave)."""
    return (source.url, source.title, source.kind, source.excerpt)


def same_sources(before: Sequence[Source], now: Sequence[Source]) -> bool:
    """Whether a step rests on the same sources as in the version before, whatever their numbers."""
    return Counter(map(source_key, before)) == Counter(map(source_key, now))


def renumbering(before: Sequence[Source], now: Sequence[Source]) -> dict[int, int]:
    """The number each of the version before's sources has now (those still among the sources)."""
    number_now = {source_key(source): source.number for source in now}
    return {s.number: number_now[source_key(s)] for s in before if source_key(s) in number_now}


def _keep(
    store: JobStore,
    job_id: str,
    before: Checkpoint,
    written: datetime,
    numbers: Mapping[int, int],
    research: Research,
) -> Checkpoint:
    text = before.text
    if any(numbers.get(number) != number for number in cited_numbers(text)):
        # Cited by its number now; a source no longer read is no longer cited.
        text, _removed = check_citations(renumber_citations(text, numbers), research.sources)
    checkpoint = Checkpoint(
        key=before.key,
        text=text,
        provider=before.provider,
        model=before.model,
        citations_removed=before.citations_removed,
        paid=False,
        unchanged_since=before.unchanged_since or written,
    )
    store.save_checkpoint(job_id, checkpoint)
    return checkpoint
