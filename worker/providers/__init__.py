"""The provider registry: which class serves which `LLM_PROVIDER` name.

Adding a provider is one module in this package and one line in `REGISTRY`. `LLM_PROVIDER` may
also name a class directly as `package.module:ClassName` (a provider kept outside this package).
Modules are imported only when chosen, so an unused provider's SDK is never loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from worker.providers.base import FatalProviderError, Provider

if TYPE_CHECKING:
    from config import Settings

# name -> "module:Class". The class builds itself with `from_settings(settings)` when it has one.
REGISTRY: dict[str, str] = {
    "offline": "worker.providers.offline:OfflineProvider",
}
# `LLM_PROVIDER=auto` takes the first of these whose key is set, in this order.
AUTO_ORDER: tuple[tuple[str, str], ...] = ()


def resolve_provider_name(settings: Settings) -> str:
    """The registry name (or `module:Class` path) that `settings` selects."""
    choice = settings.llm_provider.strip()
    if ":" not in choice:
        choice = choice.lower()
    if choice != "auto":
        return choice
    for name, key_setting in AUTO_ORDER:
        if getattr(settings, key_setting, None):
            return name
    return "offline"


def build_provider(settings: Settings) -> Provider:
    """Build the provider `settings` selects, or raise `FatalProviderError` saying what to fix."""
    name = resolve_provider_name(settings)
    target = name if ":" in name else REGISTRY.get(name)
    if target is None:
        known = ", ".join(["auto", *REGISTRY])
        raise FatalProviderError(
            f"LLM_PROVIDER={settings.llm_provider!r} is not a known provider: use one of {known}, "
            "or package.module:ClassName."
        )
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise FatalProviderError(f"LLM_PROVIDER={settings.llm_provider!r} cannot be loaded: {exc}.") from exc
    return cls.from_settings(settings) if hasattr(cls, "from_settings") else cls()
