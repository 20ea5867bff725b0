"""Gemini through Google's OpenAI-compatible endpoint, with the `openai` SDK (no third SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from worker.providers.openai_chat import OpenAIChatProvider

if TYPE_CHECKING:
    from config import Settings


class GeminiProvider(OpenAIChatProvider):
    name = "gemini"
    label = "Gemini"
    key_variable = "GEMINI_API_KEY"
    model_variable = "GEMINI_MODEL"
    token_limit_parameter = "max_tokens"

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if not settings.gemini_api_key:
            raise cls.missing_key()
        return cls(
            api_key=settings.gemini_api_key.get_secret_value(),
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            **cls.options_from(settings),
        ).with_rate_limits(settings)
