"""The retry schedule of the report task."""

from __future__ import annotations

import random

from worker.tasks import retry_delay


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for retries, ceiling in [(0, 2), (1, 4), (2, 8), (3, 16)]:
        delays = [retry_delay(retries, 2, 300, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len({round(d, 3) for d in delays}) > 100  # jittered, not a fixed value
    assert all(150 <= retry_delay(12, 2, 300, rng) <= 300 for _ in range(100))
