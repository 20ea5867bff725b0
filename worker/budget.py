"""Spend per user and calendar month (UTC), and the monthly budget a submission must stay within
(`MONTHLY_BUDGET_USD_PER_USER`, off when unset).

A user's spend this month is the cost of the jobs they asked for since the 1st (`jobs.cost_usd`,
plus what calls sent but never answered likely cost, as `/status` counts them). A submission is
checked against the budget with what is already committed too: each live job of the user may still
spend up to a report's high estimate (or its cost cap `max_cost_usd`, if lower: it stops there)
less what it has spent, and the new reports their high estimate, each at most its cap
(`worker.estimate`). Without the live jobs, ten quick batches would each see nothing
spent yet and pass together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from worker.models import LIVE_STATES, Job, User
from worker.store import JobStore


def month_start(now: datetime | None = None) -> datetime:
    """Midnight UTC on the 1st of `now`'s month."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _unanswered_cost(jobs: list[Job]) -> float:
    return sum(job.unanswered_cost_usd for job in jobs)


def capped(report_high_usd: float, max_cost_usd: float | None) -> float:
    """The most one report may cost: its high estimate, or its cost cap when that is lower."""
    return report_high_usd if max_cost_usd is None else min(report_high_usd, max_cost_usd)


@dataclass(frozen=True)
class Spend:
    """A user's spend this month, and what their live jobs may still spend."""

    spent_usd: float
    committed_usd: float


def spend_of(store: JobStore, user: str, *, report_high_usd: float = 0.0, now: datetime | None = None) -> Spend:
    """`user`'s spend this month, and up to `report_high_usd` (or the job's cap) per live job less
    its spend so far."""
    since = month_start(now)
    with store.session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(Job.cost_usd), 0.0)).where(Job.created_by == user, Job.created_at >= since)
        )
        # Few rows: live jobs, and the finished ones with calls in flight when a worker died.
        notable = session.scalars(
            select(Job).where(
                Job.created_by == user,
                or_(
                    Job.state.in_(LIVE_STATES),
                    (Job.created_at >= since) & (Job.calls_sent > Job.calls + Job.retries),
                ),
            )
        ).all()
    spent = float(total or 0.0) + _unanswered_cost([job for job in notable if job.created_at >= since])
    live = [job for job in notable if job.state in LIVE_STATES]
    committed = sum(
        max(0.0, capped(report_high_usd, job.max_cost_usd) - job.cost_usd - job.unanswered_cost_usd) for job in live
    )
    return Spend(spent_usd=spent, committed_usd=committed)


@dataclass(frozen=True)
class UserSpend:
    username: str
    spent_usd: float
    reports: int


def spend_by_user(store: JobStore, *, now: datetime | None = None) -> list[UserSpend]:
    """Every account's spend this month, the largest first (an admin's view; users who spent
    nothing are listed too), and jobs of owners without an account (the API token before accounts)."""
    since = month_start(now)
    with store.session() as session:
        rows = session.execute(
            select(Job.created_by, func.coalesce(func.sum(Job.cost_usd), 0.0), func.count())
            .where(Job.created_at >= since)
            .group_by(Job.created_by)
        ).all()
        unanswered = session.scalars(
            select(Job).where(Job.created_at >= since, Job.calls_sent > Job.calls + Job.retries)
        ).all()
        usernames = session.scalars(select(User.username)).all()
    spent = {owner: [float(cost), int(count)] for owner, cost, count in rows}
    for job in unanswered:
        spent[job.created_by][0] += job.unanswered_cost_usd
    for name in usernames:
        spent.setdefault(name, [0.0, 0])
    listed = [UserSpend(owner or "(no owner)", cost, count) for owner, (cost, count) in spent.items()]
    return sorted(listed, key=lambda row: (-row.spent_usd, row.username))


@dataclass(frozen=True)
class OverBudget:
    """A submission refused because it could take its user past the monthly budget."""

    budget_usd: float
    spent_usd: float
    committed_usd: float
    asked_usd: float
    reports: int

    @property
    def message(self) -> str:
        reports = f"{self.reports} report{'s' if self.reports != 1 else ''}"
        running = (
            f" (and your reports still running may spend up to ${self.committed_usd:.2f} more)"
            if self.committed_usd >= 0.005
            else ""
        )
        return (
            f"Over your monthly budget: you have spent ${self.spent_usd:.2f} of your ${self.budget_usd:.2f} "
            f"monthly budget this month{running}, and {reports} could cost up to ${self.asked_usd:.2f}. "
            "Submit fewer names, or ask an admin to raise MONTHLY_BUDGET_USD_PER_USER."
        )


def check_budget(
    store: JobStore,
    user: str,
    *,
    budget_usd: float | None,
    reports: int,
    report_high_usd: float,
    max_cost_usd: float | None = None,
    now: datetime | None = None,
) -> OverBudget | None:
    """Why `reports` more reports of `user`, each under the cap `max_cost_usd` (None: none), would
    pass the budget, or None (always None with no budget, or when the reports cost nothing: the
    demo provider, or models without a price). The live jobs keep their own caps, not this one."""
    if budget_usd is None or reports <= 0:
        return None
    asked = reports * capped(report_high_usd, max_cost_usd)
    if asked <= 0:
        return None
    spend = spend_of(store, user, report_high_usd=report_high_usd, now=now)
    if spend.spent_usd + spend.committed_usd + asked <= budget_usd:
        return None
    return OverBudget(budget_usd, spend.spent_usd, spend.committed_usd, asked, reports)
