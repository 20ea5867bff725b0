"""The shared rate limiter, against a real Redis: spacing, a budget shared by several workers,
tokens, and carrying on when Redis is away."""

from __future__ import annotations

import itertools
import threading
import time

import redis

from tests.conftest import RedisServer, free_port
from worker.ratelimit import HEADROOM, ProviderRateLimiter, estimate_tokens


class Clock:
    """Collects the waits instead of sleeping, so the test sees the schedule without waiting it."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.waits.append(seconds)


def test_calls_are_spaced_to_the_rate(clean_redis: RedisServer) -> None:
    clock = Clock()
    limiter = ProviderRateLimiter(clean_redis.client(), "openai", rpm=120, tpm=None, sleep=clock.sleep)
    slots = [time.monotonic() + limiter.acquire(10) for _ in range(22)]  # when each may start
    # A burst of 2 (2 % of 120) after the pause, then 120 a minute less the 1 % of headroom and
    # the burst's second call: one every 0.509 s, evenly spaced.
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert gaps[0] < 0.02, gaps
    assert all(abs(gap - 60 / (120 * HEADROOM - 1)) < 0.02 for gap in gaps[1:]), gaps
    assert slots[-1] - slots[0] > 10.05  # a provider that counts arrivals never sees more than 120


def test_one_report_s_sections_start_together_after_a_pause_and_a_minute_holds_no_more(
    clean_redis: RedisServer,
) -> None:
    """At 600 a minute, eleven calls asked at once (a report's sections) all start at once; in
    steady flow the spacing pays for that burst, so no 60 s window holds more than with none."""
    clock = Clock()
    limiter = ProviderRateLimiter(clean_redis.client(), "openai", rpm=600, tpm=None, sleep=clock.sleep)
    start = time.monotonic()
    slots = [time.monotonic() + limiter.acquire(10) - start for _ in range(700)]
    assert max(slots[:11]) < 0.05, slots[:12]
    most = max(sum(1 for s in slots if a <= s < a + 60) for a in slots[:150])
    assert most <= 600 * HEADROOM + 1, most


def test_a_minute_of_calls_at_the_limit_spans_more_than_a_minute(clean_redis: RedisServer) -> None:
    """The provider counts calls in any 60 s: the 301st call at 300 a minute must come more than
    60 s after the first, with room for the time a call takes to reach it."""
    clock = Clock()
    limiter = ProviderRateLimiter(clean_redis.client(), "openai", rpm=300, tpm=None, sleep=clock.sleep)
    slots = [time.monotonic() + limiter.acquire(10) for _ in range(301)]  # when each may start
    assert 60.5 < slots[-1] - slots[0] < 61


def test_workers_share_one_budget(clean_redis: RedisServer) -> None:
    clock = Clock()
    limiters = [
        ProviderRateLimiter(clean_redis.client(), "anthropic", rpm=60, tpm=None, sleep=clock.sleep) for _ in range(3)
    ]
    threads = [threading.Thread(target=lim.acquire, args=(10,)) for lim in limiters for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 12 calls at 60 a minute from three "workers": the last waits about 11 s, not 3.
    assert len(clock.waits) == 11 and 10.5 < max(clock.waits) < 11.5
    # Another provider has a budget of its own.
    other = ProviderRateLimiter(clean_redis.client(), "gemini", rpm=60, tpm=None, sleep=clock.sleep)
    assert other.acquire(10) == 0


def test_tokens_per_minute_are_limited_too(clean_redis: RedisServer) -> None:
    clock = Clock()
    limiter = ProviderRateLimiter(clean_redis.client(), "openai", rpm=None, tpm=6000, sleep=clock.sleep)
    assert limiter.acquire(3000) == 0
    assert 29 < limiter.acquire(3000) < 31  # 3000 tokens at 100 a second
    assert estimate_tokens("x" * 4000, 1500) == 1500


def test_without_redis_calls_go_ahead() -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    limiter = ProviderRateLimiter(dead, "openai", rpm=1, tpm=1, sleep=Clock().sleep)
    assert limiter.acquire(100) == 0
