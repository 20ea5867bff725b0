"""A chain of providers for `LLM_FALLBACK`: a step whose provider has failed for good is asked of
the next one. A provider that failed for good is skipped for the rest of the job, so that an
outage costs its retries once, not once per step."""

from __future__ import annotations

from dataclasses import replace

from worker.providers.base import (
    Completion,
    FatalProviderError,
    Prompt,
    Provider,
    ProviderError,
    TransientProviderError,
)


class FallbackProvider(Provider):
    name = "fallback"

    def __init__(self, providers: list[Provider]) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.providers = providers
        self.down: dict[str, ProviderError] = {}
        self.label = providers[0].label
        self.is_demo = providers[0].is_demo

    @property
    def model(self) -> str:
        return self.providers[0].model

    def request(self, prompt: Prompt) -> Completion:  # pragma: no cover - complete() is the entry
        return self.complete(prompt)

    def complete(self, prompt: Prompt) -> Completion:
        failed = 0
        errors: list[ProviderError] = []
        for provider in self.providers:
            if provider.name in self.down:
                errors.append(self.down[provider.name])
                continue
            try:
                completion = provider.complete(prompt)
            except ProviderError as exc:
                failed += exc.failed_attempts
                self.down[provider.name] = exc
                errors.append(exc)
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
