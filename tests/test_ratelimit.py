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
    slots = [time.monotonic() + limiter.acquire(10) for _ in range(21)]  # when each may start
    # 120 a minute, less the 1 % of headroom, is one every 0.505 s, evenly spaced from the first.
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(abs(gap - 60 / (120 * HEADROOM)) < 0.02 for gap in gaps), gaps
    assert slots[-1] - slots[0] > 10.05  # not 10: a provider that counts arrivals never sees more than 120


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
