"""The provider registry: which class serves which `LLM_PROVIDER` name.

Adding a provider is one module in this package and one line in `REGISTRY`. `LLM_PROVIDER` may
also name a class directly as `package.module:ClassName` (a provider kept outside this package).
Modules are imported only when chosen, so an unused provider's SDK is never loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from worker.providers.base import FatalProviderError, Provider
from worker.providers.fallback import FallbackProvider

if TYPE_CHECKING:
    from config import Settings

# name -> "module:Class", a `Provider` subclass that builds itself with `from_settings(settings)`.
REGISTRY: dict[str, str] = {
    "offline": "worker.providers.offline:OfflineProvider",
    "openai": "worker.providers.openai_chat:OpenAIChatProvider",
    "anthropic": "worker.providers.anthropic_messages:AnthropicProvider",
    "gemini": "worker.providers.gemini:GeminiProvider",
}
# `LLM_PROVIDER=auto` takes the first of these whose key is set, in this order.
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("openai", "openai_api_key"),
    ("anthropic", "anthropic_api_key"),
    ("gemini", "gemini_api_key"),
)


def _normalise(name: str) -> str:
    name = name.strip()
    return name if ":" in name else name.lower()


def resolve_provider_name(settings: Settings) -> str:
    """The registry name (or `module:Class` path) that `settings` selects."""
    choice = _normalise(settings.llm_provider)
    if choice != "auto":
        return choice
    for name, key_setting in AUTO_ORDER:
        if getattr(settings, key_setting, None):
            return name
    return "offline"


def fallback_names(settings: Settings) -> list[str]:
    primary = resolve_provider_name(settings)
    names: list[str] = []
    for raw in settings.llm_fallback.split(","):
        name = _normalise(raw)
        if name and name != primary and name not in names:
            names.append(name)
    return names


def load_provider(name: str, settings: Settings) -> Provider:
    """Build one provider by registry name or class path, or raise `FatalProviderError` saying what to fix."""
    target = name if ":" in name else REGISTRY.get(name)
    if target is None:
        known = ", ".join(["auto", *REGISTRY])
        raise FatalProviderError(f"{name!r} is not a known provider: use one of {known}, or package.module:ClassName.")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise FatalProviderError(f"The provider {name!r} cannot be loaded: {exc}.") from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise FatalProviderError(f"{target} is not a provider (a subclass of worker.providers.base.Provider).")
    return cls.from_settings(settings)


def build_provider(
    settings: Settings,
    *,
    down: Iterable[str] = (),
    on_down: Callable[[str], None] | None = None,
    cache: dict[str, Provider] | None = None,
) -> Provider:
    """The provider `settings` select, wrapped in a fallback chain when `LLM_FALLBACK` names more
    (`down` and `on_down` carry the providers a job found down from one of its tasks to the next).

    With `cache`, each provider is built once and reused: a worker runs a task per step, and
    building an SDK client (with its connection pool) for every one costs more CPU than the step.
    Providers hold no per-job state, so sharing them between tasks and threads is safe."""

    def load(name: str) -> Provider:
        if cache is None:
            return load_provider(name, settings)
        if name not in cache:
            cache[name] = load_provider(name, settings)
        return cache[name]

    try:
        primary = load(resolve_provider_name(settings))
    except FatalProviderError as exc:
        raise FatalProviderError(f"LLM_PROVIDER={settings.llm_provider!r}: {exc}") from None
    extra = []
    for name in fallback_names(settings):
        try:
            extra.append(load(name))
        except FatalProviderError as exc:
            raise FatalProviderError(f"LLM_FALLBACK={settings.llm_fallback!r}: {exc}") from None
    return FallbackProvider([primary, *extra], down=down, on_down=on_down) if extra else primary
