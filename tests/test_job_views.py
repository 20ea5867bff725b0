"""A card's state in words, its progress and its elapsed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webapp.job_views import format_duration, job_card
from worker.models import Job

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def make_job(**fields: object) -> Job:
    values = {
        "id": "j",
        "startup": "Acme",
        "state": "PENDING",
        "created_at": NOW - timedelta(seconds=75),
        "progress_step": 0,
        "progress_total": 0,
        "progress_label": "",
        "attempts": 0,
        "error": None,
        "finished_at": None,
        "retry_at": None,
    }
    values.update(fields)
    return Job(**values)


def test_words_for_each_state() -> None:
    def status(**fields: object) -> str:
        return job_card(make_job(**fields), max_retries=3, now=NOW).status

    assert status() == "Queued"
    assert status(state="STARTED") == "Starting"
    assert (
        status(state="PROGRESS", progress_step=5, progress_total=13, progress_label="Market size")
        == "Researching — step 5 of 13: Market size"
    )
    retrying = status(state="RETRY", attempts=2, retry_at=NOW + timedelta(seconds=30))
    assert retrying == "Retrying in 30 s (retry 2 of 3)"
    assert status(state="SUCCESS", finished_at=NOW) == "Done"
    assert status(state="FAILURE", error="OpenAI rejected the key.", finished_at=NOW) == (
        "Failed: OpenAI rejected the key."
    )


def test_progress_and_liveness() -> None:
    last_step = make_job(state="PROGRESS", progress_step=13, progress_total=13)
    running = job_card(last_step, max_retries=3, now=NOW)
    assert running.percent == 100 and running.live and running.tone == "running"
    queued = job_card(make_job(), max_retries=3, now=NOW)
    assert queued.percent == 0 and queued.live
    done = job_card(make_job(state="SUCCESS", finished_at=NOW - timedelta(seconds=5)), max_retries=3, now=NOW)
    assert done.percent == 100 and not done.live and done.elapsed == "1 min 10 s"
    assert not job_card(make_job(state="FAILURE", finished_at=NOW), max_retries=3, now=NOW).live


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (0, 8.9, 65, 3599, 3725)] == [
        "0 s",
        "8 s",
        "1 min 05 s",
        "59 min 59 s",
        "1 h 02 min",
    ]
