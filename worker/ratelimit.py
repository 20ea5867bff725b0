"""A rate limiter per provider, kept in Redis and shared by every worker process on every machine,
so that adding workers never floods a provider: a call waits for its slot instead of collecting
a 429.

It is a generic cell-rate algorithm (GCRA) that hands out reservations: each call is given the
moment it may start, spaced evenly after the previous one, with a small burst allowance after a
pause (so that one report's sections start together on an idle system). Requests and tokens
are limited alike (a call's tokens are estimated before it is made). The clock is Redis's own,
so workers on machines whose clocks differ still agree.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)

# KEYS[1]: the limiter's key. ARGV: seconds per unit, units asked for, burst tolerance in seconds.
# Returns the seconds to wait before the reserved slot, as a string (Lua numbers lose precision).
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local per_unit = tonumber(ARGV[1])
local units = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - burst
if wait < 0 then wait = 0 end
local new_tat = tat + per_unit * units
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 60000)
return tostring(wait)
"""


# Calls are spaced for 99 % of the limit. A call reaches the provider a little after its slot
# (a thread to wake, a connection to open), by a few ms or a few tens, and the provider counts
# arrivals: spaced for exactly the limit, the benchmark's 1,300 calls at 300 a minute collected
# 4 to 7 answers of 429. For requests the 1 % is 0.6 s of slack over any minute; for tokens it
# pays for the burst they are allowed (1 % of a minute's budget), so a minute still holds no more
# than the limit.
HEADROOM = 0.99
# After a pause, this share of a minute's requests may start at once (12 at 600 a minute: one
# report's eleven sections together, not 0.1 s apart). The spacing pays for it: a 60 s window
# still holds no more requests than with no burst (`request_limit`), so a busy system runs about
# 2 % slower per minute, and a minute that starts idle gets the burst back at its start.
REQUEST_BURST_SHARE = 0.02


@dataclass(frozen=True)
class Limit:
    """`per_minute` units a minute (requests or tokens), with bursts of up to `burst` units;
    `paid_burst` units a minute fewer in steady flow, to pay for the burst."""

    per_minute: float
    burst: float
    paid_burst: float = 0.0

    @property
    def seconds_per_unit(self) -> float:
        return 60.0 / (self.per_minute * HEADROOM - self.paid_burst)

    @property
    def burst_seconds(self) -> float:
        return max(0.0, self.burst - 1) * self.seconds_per_unit


class ProviderRateLimiter:
    """Requests per minute and tokens per minute for one provider (both optional)."""

    def __init__(
        self,
        client: redis.Redis,
        provider: str,
        *,
        rpm: float | None,
        tpm: float | None,
        sleep: Callable[[float], None] = time.sleep,
        prefix: str = "startup-reports:ratelimit",
    ) -> None:
        self.client = client
        self.provider = provider
        # A burst of requests is paid for by a wider spacing: any 60 s window holds at most
        # `rpm × HEADROOM + 1` requests, as with no burst (a burst on top of the full rate let a
        # provider's sliding window see a few too many). Tokens may come in bursts of 1 % of a
        # minute's budget, which HEADROOM pays for.
        self.requests = request_limit(rpm) if rpm else None
        self.tokens = Limit(tpm, max(1.0, tpm / 100)) if tpm else None
        self.sleep = sleep
        self.prefix = prefix
        self._script = client.register_script(_RESERVE)

    def _reserve(self, kind: str, limit: Limit, units: float) -> float:
        key = f"{self.prefix}:{self.provider}:{kind}"
        return float(self._script(keys=[key], args=[limit.seconds_per_unit, units, limit.burst_seconds]))

    def acquire(self, estimated_tokens: int) -> float:
        """Wait for a slot for one call of about `estimated_tokens`; returns the seconds waited.

        If Redis is unreachable the call goes ahead unthrottled (and a 429, if it comes, is
        retried as usual): a limiter outage must not stop the work.
        """
        wait = 0.0
        try:
            if self.requests:
                wait = max(wait, self._reserve("rpm", self.requests, 1))
            if self.tokens:
                wait = max(wait, self._reserve("tpm", self.tokens, max(1, estimated_tokens)))
        except redis.RedisError as exc:
            logger.warning("rate limiter for %s unavailable, not throttling: %s", self.provider, exc)
            return 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


def request_limit(rpm: float) -> Limit:
    """The requests limit: bursts of `REQUEST_BURST_SHARE` of a minute (at least one request), and
    every request of the burst but the first paid for in the spacing. (GCRA lets at most
    `window ÷ spacing + burst` calls into any window.)"""
    burst = max(1, int(rpm * REQUEST_BURST_SHARE))
    return Limit(rpm, float(burst), paid_burst=float(burst - 1))


@functools.cache
def redis_for(url: str) -> redis.Redis:
    """One client (and connection pool) per process and URL, however many providers are built:
    a provider is built for every job."""
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)


def estimate_tokens(text: str, max_output_tokens: int) -> int:
    """A call's likely token count before it is made: about four characters a token in, plus a
    typical answer out (a third of the cap)."""
    return len(text) // 4 + max_output_tokens // 3
