"""Companies and their versions: every finished report belongs to a company, and the company's
finished reports are its versions, newest first. A new version is compared with the one before
(`worker.changes`) and what changed is stored as a `Change` row, which watchers are told about.

No Celery and no Flask here: the worker calls `attach_company` and `record_change` when a report
succeeds (`worker.report_job.write_batch`), the web app reads through the other functions.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from worker.changes import compare_reports
from worker.models import FINISHED_STATES, Change, Company, Job, JobState, startup_key
from worker.sources.identity import registrable_domain
from worker.store import JobStore

logger = logging.getLogger(__name__)

#: Company ids are SQL integers: a larger number from a URL names no company (and SQLite would
#: refuse to compare with it).
MAX_COMPANY_ID = 2**31 - 1


def company_key(startup: str, website: str | None) -> str:
    """Which company a report is about: "domain:<registrable domain>" when its website is known
    (a host without a public suffix, such as an intranet's or 127.0.0.1, stands for itself), else
    "name:<the name case-folded>"."""
    if website:
        domain = registrable_domain(website) or urlsplit(website if "://" in website else f"//{website}").hostname
        if domain:
            return f"domain:{domain.lower()}"
    return f"name:{startup_key(startup)}"


def find_or_create_company(store: JobStore, startup: str, website: str | None) -> int:
    """The id of the company `startup` at `website` is, created if it is new. Two workers that
    finish reports on a new company at once create it once: the unique key lets one insert in,
    and the other reads that row."""
    key = company_key(startup, website)
    for _ in range(2):
        with store.session() as session:
            company = session.scalar(select(Company).where(Company.key == key))
            if company is not None:
                if website and not company.website:
                    company.website = website
                return company.id
        try:
            with store.session() as session:
                company = Company(key=key, name=startup, website=website)
                session.add(company)
                session.flush()
                return company.id
        except IntegrityError:
            logger.info("company %s was created by another worker meanwhile", key)
    raise RuntimeError(f"could neither find nor create the company {key!r}")


def attach_company(store: JobStore, job_id: str, startup: str, website: str | None) -> int | None:
    """Make the job's report a version of its company, before it is stored as a success (a worker
    that dies between the two leaves no success without a company). None if the job has finished
    meanwhile."""
    company_id = find_or_create_company(store, startup, website)
    with store.session() as session:
        query = update(Job).where(Job.id == job_id, Job.state.not_in(FINISHED_STATES)).values(company_id=company_id)
        if session.execute(query).rowcount != 1:
            return None
    return company_id


def _version_order(query: Any) -> Any:
    return query.order_by(Job.finished_at.desc(), Job.id.desc())


def _versions_query(company_id: int, owner: str | None) -> Any:
    query = select(Job).where(Job.company_id == company_id, Job.state == JobState.SUCCESS)
    return query.where(Job.created_by == owner) if owner is not None else query


def get_company(store: JobStore, company_id: int) -> Company | None:
    if not 0 < company_id <= MAX_COMPANY_ID:
        return None
    with store.session() as session:
        return session.get(Company, company_id)


def versions(store: JobStore, company_id: int, *, owner: str | None = None) -> list[Job]:
    """The company's finished reports, newest first (only `owner`'s, if given)."""
    with store.session() as session:
        return list(session.scalars(_version_order(_versions_query(company_id, owner))))


def count_versions(store: JobStore, company_id: int, *, owner: str | None = None) -> int:
    with store.session() as session:
        query = select(func.count()).select_from(_versions_query(company_id, owner).subquery())
        return session.scalar(query) or 0


def previous_version(store: JobStore, job: Job, *, owner: str | None = None) -> Job | None:
    """The version of the job's company that came before it (only `owner`'s, if given)."""
    if job.company_id is None or job.finished_at is None:
        return None
    earlier = or_(Job.finished_at < job.finished_at, and_(Job.finished_at == job.finished_at, Job.id < job.id))
    query = _version_order(_versions_query(job.company_id, owner).where(earlier)).limit(1)
    with store.session() as session:
        return session.scalar(query)


def list_companies(
    store: JobStore, limit: int, *, before: int | None = None, owner: str | None = None
) -> list[Company]:
    """Companies with at least one version (`owner`'s, if given), the newest company first;
    with `before`, those that come after that company's id (keyset pagination)."""
    has_version = exists().where(Job.company_id == Company.id, Job.state == JobState.SUCCESS)
    if owner is not None:
        has_version = has_version.where(Job.created_by == owner)
    query = select(Company).where(has_version).order_by(Company.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Company.id < before)
    with store.session() as session:
        return list(session.scalars(query))


def get_change(store: JobStore, job_id: str) -> Change | None:
    with store.session() as session:
        return session.scalar(select(Change).where(Change.job_id == job_id))


def change_summary(company: Company, job: Job, previous: Job, *, threshold: float) -> dict[str, Any]:
    """What `job`'s report changed against `previous`'s, as stored in `Change.summary` and served
    by the API."""
    changes = compare_reports(previous.report_md or "", job.report_md or "", threshold=threshold)
    return {
        "company": {"id": company.id, "name": company.name, "website": company.website},
        "job_id": job.id,
        "previous_job_id": previous.id,
        "since": _iso_date(previous.finished_at),
        **changes.to_dict(),
    }


def _iso_date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def record_change(store: JobStore, job_id: str, *, threshold: float) -> Change | None:
    """Store what the job's report (a new version) changed against the company's version before
    it; None for a company's first version. Called once the report is stored; a second call for
    the same job returns the row the first one stored."""
    job = store.get_job(job_id)
    if job is None or job.state != JobState.SUCCESS or job.company_id is None:
        return None
    previous = previous_version(store, job)
    company = get_company(store, job.company_id)
    if previous is None or company is None:
        return None
    summary = change_summary(company, job, previous, threshold=threshold)
    change = Change(
        company_id=company.id,
        job_id=job.id,
        previous_job_id=previous.id,
        material=summary["material"],
        summary=json.dumps(summary),
    )
    try:
        with store.session() as session:
            session.add(change)
    except IntegrityError:  # stored already: a re-delivered summary task
        return get_change(store, job_id)
    return change


def changes_between(store: JobStore, job: Job, previous: Job, *, threshold: float) -> dict[str, Any]:
    """What `job` changed against `previous`, an earlier version of its company: the stored
    summary when it was recorded against that version, else computed now."""
    stored = get_change(store, job.id)
    if stored is not None and stored.previous_job_id == previous.id:
        return json.loads(stored.summary)
    company = get_company(store, job.company_id) if job.company_id is not None else None
    if company is None:
        raise LookupError(f"job {job.id} belongs to no company")
    return change_summary(company, job, previous, threshold=threshold)


def material_versions(store: JobStore, company_id: int) -> dict[str, bool]:
    """For each of the company's versions with a recorded change: whether it was material."""
    with store.session() as session:
        rows = session.execute(select(Change.job_id, Change.material).where(Change.company_id == company_id))
        return {job_id: material for job_id, material in rows}


def is_earlier(version: Job, than: Job) -> bool:
    """Did `version` come before `than` in their company's history (the order of `versions`)?"""
    if version.finished_at is None or than.finished_at is None:
        return False
    return (version.finished_at, version.id) < (than.finished_at, than.id)
