"""OpenAI through the `openai` SDK's Chat Completions API.

Chat Completions rather than the newer Responses API, because it is what every OpenAI-compatible
server speaks (Ollama, vLLM, LM Studio, OpenRouter, company gateways): those are configuration
(`OPENAI_BASE_URL`), not new code. Gemini reuses this class (gemini.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, Unpack

import openai

from worker.providers.base import Completion, Prompt, RemoteOptions, RemoteProvider, TransientProviderError

if TYPE_CHECKING:
    from config import Settings


class OpenAIChatProvider(RemoteProvider):
    name = "openai"
    label = "OpenAI"
    key_variable = "OPENAI_API_KEY"
    model_variable = "OPENAI_MODEL"
    #: OpenAI's current models take `max_completion_tokens`; Google's compatible endpoint wants
    #: `max_tokens`.
    token_limit_parameter = "max_completion_tokens"

    def __init__(
        self, *, api_key: str, model: str, base_url: str | None = None, **options: Unpack[RemoteOptions]
    ) -> None:
        super().__init__(model=model, **options)
        # The SDK's retries are off: Provider.complete retries, counting every attempt.
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.timeout, max_retries=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key and not settings.openai_base_url:
            raise cls.missing_key()
        return cls(
            # A self-hosted compatible server may want no key, but the SDK insists on one.
            api_key=key or "not-needed",
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            **cls.options_from(settings),
        ).with_rate_limits(settings)

    def request(self, prompt: Prompt) -> Completion:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
                **{self.token_limit_parameter: self.max_output_tokens},
            )
        except openai.APITimeoutError:
            raise self.timed_out() from None
        except openai.APIConnectionError as exc:
            raise self.unreachable(exc) from None
        except openai.APIStatusError as exc:
            headers = exc.response.headers if exc.response is not None else None
            raise self.http_error(exc.status_code, str(exc.message or exc), headers) from None
        except (ValueError, TypeError, openai.APIResponseValidationError) as exc:
            raise self.malformed(type(exc).__name__) from None

        choices = getattr(response, "choices", None)
        if not choices:
            raise self.malformed("no choices")
        choice = choices[0]
        if getattr(choice.message, "refusal", None) or choice.finish_reason == "content_filter":
            raise self.refused(choice.message.refusal or "content filter")
        text = (choice.message.content or "").strip()
        if not text:
            raise TransientProviderError(f"{self.label} returned an empty answer.", provider=self.name)
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            provider=self.name,
            model=self.model,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )
