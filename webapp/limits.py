"""A per-user limit on report submissions, counted in Redis so that every API process on every
machine shares it: a fixed window of one minute, one INCR per submission."""

from __future__ import annotations

import logging
import time

import redis

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class SubmitLimiter:
    def __init__(self, client: redis.Redis, per_minute: int, prefix: str = "startup-reports:submit") -> None:
        self.client = client
        self.per_minute = per_minute
        self.prefix = prefix

    def take(self, user: str, count: int = 1, now: float | None = None) -> float | None:
        """Count `count` submissions by `user`. None if allowed, else the seconds until they are.

        When Redis is down the limiter lets the request through: the submission itself then fails
        with a clear 503, which says more than a limiter error would.
        """
        now = time.time() if now is None else now
        window = int(now // WINDOW_SECONDS)
        key = f"{self.prefix}:{user}:{window}"
        try:
            pipe = self.client.pipeline()
            pipe.incrby(key, count)
            pipe.expire(key, WINDOW_SECONDS * 2)
            used, _ = pipe.execute()
        except redis.RedisError as exc:
            logger.warning("rate limiter unavailable, not limiting: %s", exc)
            return None
        if used <= self.per_minute:
            return None
        try:
            self.client.decrby(key, count)  # a refused request does not use up the budget
        except redis.RedisError:
            pass
        return max(1.0, (window + 1) * WINDOW_SECONDS - now)


class SubmissionRefused(Exception):
    """Over a limit: the message says which and when to try again."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check_submission(limiter: SubmitLimiter, live_jobs: int, max_live: int, user: str, count: int) -> None:
    """Raise `SubmissionRefused` when `user` may not queue `count` more reports now."""
    if live_jobs + count > max_live:
        raise SubmissionRefused(
            f"You have {live_jobs} reports queued or running; the limit is {max_live} at once. "
            "Wait for some to finish (or cancel them), then submit again."
        )
    wait = limiter.take(user, count)
    if wait is not None:
        raise SubmissionRefused(
            f"Too many submissions: at most {limiter.per_minute} reports a minute per user. "
            f"Try again in {int(wait) + 1} s.",
            retry_after=wait,
        )
