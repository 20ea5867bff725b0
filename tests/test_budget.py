"""Spend per user and month, and the monthly budget check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from config import Settings
from worker.budget import check_budget, month_start, spend_by_user, spend_of
from worker.models import Job, User
from worker.pipeline import Checkpoint
from worker.store import JobStore

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(settings: Settings) -> JobStore:
    return JobStore(settings.database_url)


def spent(store: JobStore, owner: str | None, cost: float, *, created_at: datetime = NOW, live: bool = False) -> str:
    """A job of `owner` created at `created_at` that cost `cost`: finished, or still running."""
    job = store.create_job("Spent Co", owner)
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.save_checkpoint(job.id, Checkpoint("plan", "text", "openai", "gpt-5-mini", 1000, 100), cost)
    if not live:
        store.mark_succeeded(job.id, report_md="# Report", provider="openai/gpt-5-mini")
    with store.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(created_at=created_at))
    return job.id


def test_the_month_starts_at_midnight_utc_on_the_first() -> None:
    assert month_start(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    berlin_new_year = datetime(2027, 1, 1, 0, 30, tzinfo=UTC) + timedelta(hours=-1)  # 23:30 UTC, 31 Dec
    assert month_start(berlin_new_year) == datetime(2026, 12, 1, tzinfo=UTC)


def test_spend_counts_this_months_jobs_of_the_user_and_calls_never_answered(store: JobStore) -> None:
    spent(store, "ana", 1.0)
    spent(store, "ana", 2.0, created_at=datetime(2026, 11, 1, tzinfo=UTC))
    spent(store, "ana", 50.0, created_at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC))  # last month
    spent(store, "bob", 7.0)
    lost = spent(store, "ana", 0.5)
    with store.session() as session:  # three calls sent, one answered: two lost with a worker
        session.execute(update(Job).where(Job.id == lost).values(calls_sent=3))
    assert spend_of(store, "ana", now=NOW).spent_usd == pytest.approx(1.0 + 2.0 + 0.5 + 2 * 0.5)
    assert spend_of(store, "nobody", now=NOW).spent_usd == 0


def test_live_jobs_commit_what_they_may_still_spend(store: JobStore) -> None:
    spent(store, "ana", 0.3, live=True)
    spent(store, "ana", 0.1)
    spend = spend_of(store, "ana", report_high_usd=1.0, now=NOW)
    assert spend.spent_usd == pytest.approx(0.4)
    assert spend.committed_usd == pytest.approx(0.7)  # up to 1.0 a report, 0.3 of it spent


def test_a_submission_that_could_pass_the_budget_is_refused(store: JobStore) -> None:
    spent(store, "ana", 4.0)
    spent(store, "ana", 0.5, live=True)
    assert check_budget(store, "ana", budget_usd=None, reports=50, report_high_usd=1.0, now=NOW) is None
    assert check_budget(store, "ana", budget_usd=10.0, reports=5, report_high_usd=1.0, now=NOW) is None  # 9.5 of 10
    refusal = check_budget(store, "ana", budget_usd=10.0, reports=6, report_high_usd=1.0, now=NOW)
    assert refusal is not None
    assert (refusal.spent_usd, refusal.committed_usd, refusal.asked_usd) == pytest.approx((4.5, 0.5, 6.0))
    assert refusal.message.startswith("Over your monthly budget: you have spent $4.50 of your $10.00 monthly budget")
    assert "may spend up to $0.50 more" in refusal.message and "6 reports could cost up to $6.00" in refusal.message
    # What costs nothing (the demo provider, a model without a price) is never refused.
    assert check_budget(store, "ana", budget_usd=1.0, reports=50, report_high_usd=0.0, now=NOW) is None
    # Another user's spend is theirs.
    assert check_budget(store, "bob", budget_usd=10.0, reports=6, report_high_usd=1.0, now=NOW) is None


def test_every_users_spend_this_month_largest_first_with_the_accounts_that_spent_nothing(store: JobStore) -> None:
    with store.session() as session:
        session.add_all([User(username="ana", password_hash="x"), User(username="cy", password_hash="x")])
    spent(store, "ana", 1.0)
    spent(store, "ana", 2.0)
    spent(store, "bob", 5.0)
    spent(store, "bob", 9.0, created_at=datetime(2026, 10, 2, tzinfo=UTC))
    spent(store, None, 0.25)
    rows = [(row.username, row.reports, round(row.spent_usd, 6)) for row in spend_by_user(store, now=NOW)]
    assert rows == [("bob", 1, 5.0), ("ana", 2, 3.0), ("(no owner)", 1, 0.25), ("cy", 0, 0.0)]


def test_a_capped_report_counts_at_most_its_cap_live_or_new(store: JobStore) -> None:
    capped = spent(store, "ana", 0.1, live=True)
    spent(store, "ana", 0.2, live=True)  # no cap: up to the high estimate
    with store.session() as session:
        session.execute(update(Job).where(Job.id == capped).values(max_cost_usd=0.25))
    spend = spend_of(store, "ana", report_high_usd=1.0, now=NOW)
    assert spend.committed_usd == pytest.approx((0.25 - 0.1) + (1.0 - 0.2))
    # New reports under a cap of 0.5 ask 0.5 each; the live jobs keep their own caps, not the new one.
    refusal = check_budget(store, "ana", budget_usd=2.0, reports=2, report_high_usd=1.0, max_cost_usd=0.5, now=NOW)
    assert refusal is not None
    assert (refusal.spent_usd, refusal.committed_usd, refusal.asked_usd) == pytest.approx((0.3, 0.95, 1.0))
    assert check_budget(store, "ana", budget_usd=2.0, reports=1, report_high_usd=1.0, max_cost_usd=0.5, now=NOW) is None


def test_a_budget_of_nothing_may_be_set_and_refuses_any_paid_report(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONTHLY_BUDGET_USD_PER_USER", "0")
    assert Settings().monthly_budget_usd_per_user == 0.0
    assert check_budget(store, "ana", budget_usd=0.0, reports=1, report_high_usd=0.01, now=NOW) is not None
    assert check_budget(store, "ana", budget_usd=0.0, reports=1, report_high_usd=0.0, now=NOW) is None
