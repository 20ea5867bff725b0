"""Anthropic through the `anthropic` SDK's Messages API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, Unpack

import anthropic

from worker.providers.base import Completion, Prompt, RemoteOptions, RemoteProvider, TransientProviderError

if TYPE_CHECKING:
    from config import Settings


class AnthropicProvider(RemoteProvider):
    name = "anthropic"
    label = "Anthropic"
    key_variable = "ANTHROPIC_API_KEY"
    model_variable = "ANTHROPIC_MODEL"

    def __init__(
        self, *, api_key: str, model: str, base_url: str | None = None, **options: Unpack[RemoteOptions]
    ) -> None:
        super().__init__(model=model, **options)
        # The SDK's retries are off: Provider.complete retries, counting every attempt.
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=self.timeout, max_retries=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if not settings.anthropic_api_key:
            raise cls.missing_key()
        return cls(
            api_key=settings.anthropic_api_key.get_secret_value(),
            model=settings.anthropic_model,
            base_url=settings.anthropic_base_url,
            **cls.options_from(settings),
        ).with_rate_limits(settings)

    def request(self, prompt: Prompt) -> Completion:
        try:
            message = self.client.messages.create(
                model=self.model,
                system=prompt.system,
                messages=[{"role": "user", "content": prompt.user}],
                max_tokens=self.max_output_tokens,
            )
        except anthropic.APITimeoutError:
            raise self.timed_out() from None
        except anthropic.APIConnectionError as exc:
            raise self.unreachable(exc) from None
        except anthropic.APIStatusError as exc:
            headers = exc.response.headers if exc.response is not None else None
            raise self.http_error(exc.status_code, str(exc.message or exc), headers) from None
        except (ValueError, TypeError, anthropic.APIResponseValidationError) as exc:
            raise self.malformed(type(exc).__name__) from None

        if getattr(message, "stop_reason", None) == "refusal":
            raise self.refused()
        blocks = getattr(message, "content", None) or []
        text = "".join(getattr(block, "text", "") for block in blocks if getattr(block, "type", "") == "text")
        if not text.strip():
            raise TransientProviderError(f"{self.label} returned an empty answer.", provider=self.name)
        usage = getattr(message, "usage", None)
        return Completion(
            text=text.strip(),
            provider=self.name,
            model=self.model,
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        )
