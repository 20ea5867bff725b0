"""The small interface every language-model provider implements, and the errors it may raise.

Errors are classified here, once, at the provider boundary: a `TransientProviderError` is worth
retrying later (timeouts, connection trouble, 408, 409, 429, 5xx, Anthropic's 529 "overloaded",
a malformed answer); a `FatalProviderError` will fail the same way every time (bad key, bad
request, unknown model, a refusal) and fails the step at once.

Retries, layer by layer (defaults in brackets; README "Retries and their worst case"):

1. The SDK's own retries are off (`max_retries=0`), so that every attempt is counted here and a
   `Retry-After` is honoured with jitter rather than by the SDK's blind schedule.
2. `Provider.complete` retries a transient error `LLM_MAX_RETRIES` [2] times, waiting what the
   server asked for (`retry-after-ms` or `Retry-After`, plus up to 10 % jitter) or else an
   exponential backoff (1 s, 2 s, … with jitter). A wait longer than `LLM_MAX_RETRY_WAIT` [60 s]
   is not spent holding a worker slot: the error goes up at once, carrying the wait.
3. The Celery task retries the job `TASK_MAX_RETRIES` [3] times, no sooner than the server asked,
   and resumes after the last finished step.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self, TypedDict

from worker.ratelimit import ProviderRateLimiter, estimate_tokens, redis_for

if TYPE_CHECKING:
    from config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompt:
    """One request to a model. `step` and `startup` let the offline provider pick its canned text;
    real providers send only `system` and `user`."""

    system: str
    user: str
    step: str
    startup: str


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    #: Failed attempts before this answer (retries, and providers that failed before a fallback).
    failed_attempts: int = 0


AttemptCallback = Callable[["Provider", Prompt], None]


class ProviderError(Exception):
    """A provider call failed. `str(error)` is a sentence a person can act on."""

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        #: Seconds the server asked us to wait before trying again, when it said.
        self.retry_after = retry_after
        #: Attempts that failed in the call that raised this (for accounting); set by `complete`.
        self.failed_attempts = 0


class TransientProviderError(ProviderError):
    """Worth another try later: the same call may well succeed."""


class FatalProviderError(ProviderError):
    """Will fail the same way again: retrying only spends money and time."""


def backoff_delay(retries: int, base: float, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: about base·2^retries seconds, capped at `maximum`.

    The delay is drawn between half and all of that, so callers that failed together (a provider
    outage) do not all come back in the same second, yet each still waits a real while.
    """
    ceiling = min(maximum, base * (2**retries))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_after_seconds(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """The wait a server asked for: `retry-after-ms` (OpenAI, Anthropic) or `Retry-After` in
    seconds or as an HTTP date. None when it asked for nothing usable."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            value = lowered["retry-after"].strip()
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError):
        return None
    return None


RETRYABLE_STATUSES = frozenset({408, 409, 429})


def classify_status(
    status: int,
    *,
    label: str,
    name: str,
    key_variable: str,
    model_variable: str,
    model: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """Turn an HTTP error status from any provider into the error the rest of the system acts on."""
    detail = " ".join(detail.split())[:300]
    if status in RETRYABLE_STATUSES or status >= 500:
        what = {
            408: "timed out on its side",
            409: "reported a conflict",
            429: "is rate-limiting this key",
            529: "is overloaded",
        }.get(status, f"had a server error ({status})")
        return TransientProviderError(f"{label} {what}.", provider=name, retry_after=retry_after_seconds(headers))
    if status in (401, 403):
        return FatalProviderError(f"{label} rejected the API key ({status}): check {key_variable}.", provider=name)
    if status == 404:
        return FatalProviderError(
            f"{label} does not know the model {model!r} (404): check {model_variable}.", provider=name
        )
    if status == 402:
        return FatalProviderError(
            f"{label} refused the request for billing reasons (402): check the account's credit.",
            provider=name,
        )
    return FatalProviderError(
        f"{label} rejected the request ({status}): {detail or 'no detail given'}. Check {model_variable} "
        "and the provider's settings.",
        provider=name,
    )


class Provider(ABC):
    """A language model that turns a prompt into text.

    Subclasses implement `request` (one attempt, errors already classified); `complete` adds the
    retry loop of layer 2 above.
    """

    #: The registry name ("offline", "openai", …).
    name: str = ""
    #: How people call it in messages ("OpenAI").
    label: str = ""
    #: True for output that is not research (the offline demo): reports then carry a banner.
    is_demo: bool = False
    #: Retries of a transient error within one call, and the longest wait worth a worker slot.
    max_retries: int = 0
    max_retry_wait: float = 60.0
    backoff_base: float = 1.0
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the provider `LLM_PROVIDER` names; one that needs no settings takes no arguments."""
        return cls()

    @property
    @abstractmethod
    def model(self) -> str:
        """The model's name as the provider knows it."""

    @abstractmethod
    def request(self, prompt: Prompt) -> Completion:
        """One attempt at answering `prompt`, or a `ProviderError` subclass."""

    def throttle(self, prompt: Prompt) -> None:  # noqa: B027 (a hook: most providers have no limit)
        """Wait for the provider's rate limit before an attempt; providers with a limit override it."""
        return None

    def complete(self, prompt: Prompt, on_attempt: AttemptCallback | None = None) -> Completion:
        """Answer `prompt`, retrying transient errors as the class docstring describes.
        `on_attempt` is told of each attempt just before it is sent, so that a call in flight when
        the process dies is still on the books (it is paid for all the same)."""
        failed = 0
        while True:
            try:
                self.throttle(prompt)
                if on_attempt is not None:
                    on_attempt(self, prompt)
                completion = self.request(prompt)
            except TransientProviderError as exc:
                failed += 1
                exc.failed_attempts = failed
                if failed > self.max_retries:
                    raise
                if exc.retry_after is not None:
                    wait = exc.retry_after + random.uniform(0, min(1.0, 0.1 * exc.retry_after))
                else:
                    wait = backoff_delay(failed - 1, self.backoff_base, self.max_retry_wait)
                if wait > self.max_retry_wait:
                    raise
                logger.info("%s: %s; retry %d of %d in %.1f s", self.label, exc, failed, self.max_retries, wait)
                self.sleep(wait)
            except FatalProviderError as exc:
                exc.failed_attempts = failed + 1
                raise
            else:
                return replace(completion, failed_attempts=completion.failed_attempts + failed)


class RemoteOptions(TypedDict, total=False):
    """The call options every remote provider takes from the settings (`options_from`)."""

    timeout: float
    max_retries: int
    max_retry_wait: float
    backoff_base: float
    max_output_tokens: int


class RemoteProvider(Provider):
    """A provider reached over HTTP with an API key: the options and the error wording they share."""

    key_variable: str = ""
    model_variable: str = ""

    def __init__(
        self,
        *,
        model: str,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        backoff_base: float = 1.0,
        max_output_tokens: int = 2000,
    ) -> None:
        self._model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff_base = backoff_base
        self.max_output_tokens = max_output_tokens
        self.limiter: ProviderRateLimiter | None = None

    def throttle(self, prompt: Prompt) -> None:
        if self.limiter is not None:
            self.limiter.acquire(estimate_tokens(prompt.system + prompt.user, self.max_output_tokens))

    def with_rate_limits(self, settings: Settings) -> Self:
        """Share `<NAME>_RPM` / `<NAME>_TPM` through Redis with every other worker."""
        rpm = getattr(settings, f"{self.name}_rpm", 0)
        tpm = getattr(settings, f"{self.name}_tpm", 0)
        if rpm or tpm:
            client = redis_for(settings.broker_url)
            self.limiter = ProviderRateLimiter(client, self.name, rpm=rpm or None, tpm=tpm or None)
        return self

    @staticmethod
    def options_from(settings: Settings) -> RemoteOptions:
        """The call options every remote provider takes from the settings."""
        return {
            "timeout": settings.llm_timeout,
            "max_retries": settings.llm_max_retries,
            "max_retry_wait": settings.llm_max_retry_wait,
            "backoff_base": settings.llm_backoff_base,
            "max_output_tokens": settings.llm_max_output_tokens,
        }

    @classmethod
    def missing_key(cls) -> FatalProviderError:
        return FatalProviderError(f"{cls.label} needs an API key: set {cls.key_variable}.", provider=cls.name)

    @property
    def model(self) -> str:
        return self._model

    def timed_out(self) -> TransientProviderError:
        return TransientProviderError(f"{self.label} did not answer within {self.timeout:g} s.", provider=self.name)

    def unreachable(self, exc: Exception) -> TransientProviderError:
        return TransientProviderError(f"{self.label} could not be reached: {exc}.", provider=self.name)

    def malformed(self, what: str) -> TransientProviderError:
        return TransientProviderError(f"{self.label} returned a malformed response ({what}).", provider=self.name)

    def refused(self, reason: str = "") -> FatalProviderError:
        because = f" ({reason})" if reason else ""
        return FatalProviderError(
            f"{self.label} refused to write this section{because}. Check the startup's name, or name "
            "another provider in LLM_FALLBACK.",
            provider=self.name,
        )

    def http_error(self, status: int, detail: str, headers: Mapping[str, str] | None) -> ProviderError:
        return classify_status(
            status,
            label=self.label,
            name=self.name,
            key_variable=self.key_variable,
            model_variable=self.model_variable,
            model=self._model,
            detail=detail,
            headers=headers,
        )
