"""The retry schedule of the report task and of one provider call."""

from __future__ import annotations

import random

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
