"""A chain of providers for `LLM_FALLBACK`: a step whose provider has failed for good is asked of
the next one. A provider that failed for good is skipped for the rest of the job, so that an
outage costs its retries once, not once per step. A job runs as several tasks, so the providers
found down come in through `down` and go out through `on_down` for the caller to keep."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from worker.providers.base import (
    AttemptCallback,
    Completion,
    FatalProviderError,
    Prompt,
    Provider,
    ProviderError,
    TransientProviderError,
)


class FallbackProvider(Provider):
    name = "fallback"

    def __init__(
        self,
        providers: list[Provider],
        *,
        down: Iterable[str] = (),
        on_down: Callable[[str], None] | None = None,
    ) -> None:
        """`down` holds entries "<provider>:transient" or "<provider>:fatal" that earlier tasks of
        the job reported through `on_down`."""
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.providers = providers
        self.on_down = on_down
        self.down: dict[str, ProviderError] = {}
        for entry in down:
            name, _, kind = entry.partition(":")
            error_type = TransientProviderError if kind == "transient" else FatalProviderError
            self.down[name] = error_type(f"{name} failed earlier in this job, so it was skipped.", provider=name)
        self.label = providers[0].label
        self.is_demo = providers[0].is_demo

    @property
    def model(self) -> str:
        return self.providers[0].model

    def request(self, prompt: Prompt) -> Completion:  # pragma: no cover - complete() is the entry
        return self.complete(prompt)

    def complete(self, prompt: Prompt, on_attempt: AttemptCallback | None = None) -> Completion:
        failed = 0
        errors: list[ProviderError] = []
        for provider in self.providers:
            if provider.name in self.down:
                errors.append(self.down[provider.name])
                continue
            try:
                completion = provider.complete(prompt, on_attempt)
            except ProviderError as exc:
                failed += exc.failed_attempts
                self.down[provider.name] = exc
                errors.append(exc)
                if self.on_down:
                    kind = "transient" if isinstance(exc, TransientProviderError) else "fatal"
                    self.on_down(f"{provider.name}:{kind}")
                continue
            return replace(completion, failed_attempts=completion.failed_attempts + failed)
        raise self._combined(errors, failed)

    def _combined(self, errors: list[ProviderError], failed: int) -> ProviderError:
        """Transient if any provider might come back (the job is then retried later), else fatal."""
        message = " Then: ".join(str(e) for e in errors)
        transient = [e for e in errors if isinstance(e, TransientProviderError)]
        if transient:
            waits = [e.retry_after for e in transient if e.retry_after is not None]
            error: ProviderError = TransientProviderError(
                message, provider=transient[0].provider, retry_after=min(waits) if waits else None
            )
        else:
            error = FatalProviderError(message, provider=errors[0].provider)
        error.failed_attempts = failed
        return error
