"""Watches and the re-run schedule: who follows which company, how often, and which companies are due.

The schedule lives on the company (`Company.every_seconds`, `next_run_at`), not in Celery beat:
beat only sends `worker.watch_tasks.queue_due_reruns` every WATCH_TICK_SECONDS, which asks the
database what is due, so a new watch needs no restart. A period is claimed by moving `next_run_at`
on with a compare-and-set (`UPDATE … WHERE id = ? AND next_run_at = <the value read>`) before its
re-run is queued: of two ticks that read the same due company (two beats, or a beat restarted
mid-tick) only one moves it, and only that one queues. Plain functions, no Celery: the task is thin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from worker.models import Company, Job, JobState, User, Watch, utcnow
from worker.store import JobStore

logger = logging.getLogger(__name__)

DAY = 24 * 3600
#: The cadences a watch may be given by name; "off" keeps the watch on the list without re-runs.
CADENCES = {"daily": DAY, "weekly": 7 * DAY, "monthly": 30 * DAY, "off": 0}
#: `Job.trigger` of a re-run queued by the schedule.
WATCH_TRIGGER = "watch"

#: "Now" for the schedule; tests pass their own `now` to the functions below instead.
Clock = Callable[[], datetime]


class InvalidCadence(ValueError):
    """`every` is not a cadence a watch may have; the message says which ones are."""


class NoSuchCompany(LookupError):
    pass


class NoSuchWatch(LookupError):
    pass


class NotYourWatch(PermissionError):
    pass


def parse_every(value: object, minimum: int) -> int:
    """Seconds between re-runs for "daily", "weekly", "monthly", "off" (0), or a whole number of
    seconds no smaller than `minimum` (WATCH_MIN_INTERVAL)."""
    if isinstance(value, str) and value.strip().lower() in CADENCES:
        return CADENCES[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    raise InvalidCadence(
        f'"every" must be "daily", "weekly", "monthly", "off", or a whole number of seconds of at least {minimum}.'
    )


def describe_every(seconds: int) -> str:
    for name, value in CADENCES.items():
        if value == seconds:
            return name
    return f"every {seconds} s"


def newest_version(session: Session, company_id: int) -> Job | None:
    """The company's newest finished report (its newest version)."""
    query = (
        select(Job)
        .where(Job.company_id == company_id, Job.state == JobState.SUCCESS)
        .order_by(Job.finished_at.desc(), Job.id)
        .limit(1)
    )
    return session.scalar(query)


def reschedule(session: Session, company_id: int, now: datetime) -> Company:
    """Recompute the company's cadence (the shortest of its active watches) and its next run: one
    period after the later of its newest version and the start of the period already claimed (so
    that changing a watch never makes a period that has had its re-run due again), or one period
    from now for a company without a version."""
    company = session.get(Company, company_id, with_for_update=True)
    if company is None:
        raise NoSuchCompany(f"No company with id {company_id}.")
    query = select(func.min(Watch.every_seconds)).where(Watch.company_id == company_id, Watch.every_seconds > 0)
    every = session.scalar(query)
    if not every:
        company.every_seconds, company.next_run_at = None, None
        return company
    anchors = []
    newest = newest_version(session, company_id)
    if newest is not None and newest.finished_at is not None:
        anchors.append(newest.finished_at)
    if company.every_seconds and company.next_run_at is not None:
        anchors.append(company.next_run_at - timedelta(seconds=company.every_seconds))
    anchor = max(anchors) if anchors else now
    company.every_seconds = every
    company.next_run_at = anchor + timedelta(seconds=every)
    return company


def watch(store: JobStore, user_id: int, company_id: int, every: int, *, now: datetime | None = None) -> Watch:
    """Follow a company (or change how often): one watch per user and company."""
    now = now or utcnow()
    with store.session() as session:
        if session.get(Company, company_id) is None:
            raise NoSuchCompany(f"No company with id {company_id}.")
        row = session.scalar(select(Watch).where(Watch.user_id == user_id, Watch.company_id == company_id))
        if row is None:
            row = Watch(user_id=user_id, company_id=company_id, every_seconds=every, created_at=now)
            session.add(row)
        else:
            row.every_seconds = every
        session.flush()
        reschedule(session, company_id, now)
        return row


def unwatch(
    store: JobStore, watch_id: int, user_id: int, *, is_admin: bool = False, now: datetime | None = None
) -> None:
    """Remove a watch: its owner's or an admin's to remove."""
    with store.session() as session:
        row = session.get(Watch, watch_id)
        if row is None:
            raise NoSuchWatch(f"No watch with id {watch_id}.")
        if row.user_id != user_id and not is_admin:
            raise NotYourWatch("Only the user who watches this company, or an admin, may remove the watch.")
        session.delete(row)
        session.flush()
        reschedule(session, row.company_id, now or utcnow())


@dataclass(frozen=True)
class WatchEntry:
    """A line of a watchlist: the watch, its company, and the company's last and next run."""

    watch: Watch
    company: Company
    last_run: datetime | None
    last_job_id: str | None


def watches_of(store: JobStore, user_id: int | None = None, company_id: int | None = None) -> list[WatchEntry]:
    """A user's watches (or a company's, or all), the most recently followed first."""
    with store.session() as session:
        query = select(Watch, Company).join(Company, Company.id == Watch.company_id)
        if user_id is not None:
            query = query.where(Watch.user_id == user_id)
        if company_id is not None:
            query = query.where(Watch.company_id == company_id)
        entries = []
        for row, company in session.execute(query.order_by(Watch.created_at.desc(), Watch.id.desc())):
            newest = newest_version(session, company.id)
            entries.append(
                WatchEntry(row, company, newest.finished_at if newest else None, newest.id if newest else None)
            )
        return entries


def watch_of(store: JobStore, user_id: int, company_id: int) -> Watch | None:
    with store.session() as session:
        return session.scalar(select(Watch).where(Watch.user_id == user_id, Watch.company_id == company_id))


def watcher_names(store: JobStore, company_id: int) -> list[str]:
    """Who follows the company with a schedule, the longest-standing first."""
    with store.session() as session:
        query = (
            select(User.username)
            .join(Watch, Watch.user_id == User.id)
            .where(Watch.company_id == company_id, Watch.every_seconds > 0)
            .order_by(Watch.created_at, Watch.id)
        )
        return list(session.scalars(query))


# The schedule.


def due_companies(store: JobStore, now: datetime) -> list[Company]:
    with store.session() as session:
        query = (
            select(Company)
            .where(Company.next_run_at.is_not(None), Company.next_run_at <= now, Company.every_seconds > 0)
            .order_by(Company.next_run_at, Company.id)
        )
        return list(session.scalars(query))


def claim_period(store: JobStore, company_id: int, expected: datetime, next_run_at: datetime) -> bool:
    """Move the company's next run from `expected` to `next_run_at`, if nobody moved it first: the
    one caller that gets True queues the period's re-run."""
    with store.session() as session:
        query = (
            update(Company)
            .where(Company.id == company_id, Company.next_run_at == expected)
            .values(next_run_at=next_run_at)
        )
        return session.execute(query).rowcount == 1


def following_period(due_at: datetime, every: int, now: datetime) -> datetime:
    """The first run after `now` on the company's grid: periods missed while no beat ran are
    skipped, not made up for one after another."""
    step = timedelta(seconds=every)
    missed = max(0, int((now - due_at) / step))
    following = due_at + step * (missed + 1)
    return following if following > now else following + step


@dataclass(frozen=True)
class Rerun:
    """What a due company's re-run is: a normal job of its name and website, building on its
    newest version, owned by its longest-standing watcher."""

    company_id: int
    startup: str
    website: str | None
    owner: str
    previous_job_id: str | None


def plan_rerun(store: JobStore, company: Company) -> Rerun | None:
    owners = watcher_names(store, company.id)
    if not owners:
        return None
    with store.session() as session:
        newest = newest_version(session, company.id)
    return Rerun(company.id, company.name, company.website, owners[0], newest.id if newest else None)


#: Queues one re-run as a job (`JobService.submit` in the worker); raises if it could not.
Submit = Callable[[Rerun], Job]


def queue_due_reruns(store: JobStore, submit: Submit, now: datetime) -> list[str]:
    """One tick of the schedule: claim each due company's period, then queue its re-run. Returns
    the ids of the jobs queued. A company whose re-run could not be queued gets its period back,
    so the next tick tries again; one whose last re-run is still live skips this period."""
    queued = []
    for company in due_companies(store, now):
        expected, every = company.next_run_at, company.every_seconds
        assert expected is not None and every
        if not claim_period(store, company.id, expected, following_period(expected, every, now)):
            logger.info("company %s: this period's re-run was queued by another tick", company.id)
            continue
        rerun = plan_rerun(store, company)
        if rerun is None:
            continue
        live = store.find_live(company.name)
        if live is not None:
            logger.info("company %s: job %s is still live; no re-run this period", company.id, live.id)
            continue
        try:
            job = submit(rerun)
        except Exception as exc:  # Redis away: the period is given back, the other companies still tried
            logger.warning("company %s: could not queue its re-run (%s); the next tick tries again", company.id, exc)
            claim_period(store, company.id, following_period(expected, every, now), expected)
            continue
        logger.info("company %s (%s): queued re-run %s for %s", company.id, company.name, job.id, rerun.owner)
        queued.append(job.id)
    return queued
