"""The provider registry: choosing a provider, and saying clearly when the choice is wrong."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from worker.providers import build_provider, resolve_provider_name
from worker.providers.base import FatalProviderError
from worker.providers.offline import OfflineProvider


def test_auto_without_keys_falls_back_to_the_offline_demo() -> None:
    settings = make_settings(llm_provider="auto", offline_step_delay=0.25)
    assert resolve_provider_name(settings) == "offline"
    provider = build_provider(settings)
    assert isinstance(provider, OfflineProvider)
    assert provider.is_demo and provider.step_delay == 0.25


def test_names_are_case_insensitive() -> None:
    assert isinstance(build_provider(make_settings(llm_provider=" Offline ")), OfflineProvider)


def test_unknown_provider_is_a_fatal_error_naming_the_choices() -> None:
    with pytest.raises(FatalProviderError, match=r"LLM_PROVIDER='nope'.*offline"):
        build_provider(make_settings(llm_provider="nope"))


def test_a_class_path_loads_a_provider_kept_elsewhere() -> None:
    provider = build_provider(make_settings(llm_provider="worker.providers.offline:OfflineProvider"))
    assert isinstance(provider, OfflineProvider)
    with pytest.raises(FatalProviderError, match="cannot be loaded"):
        build_provider(make_settings(llm_provider="worker.providers.offline:Missing"))
    with pytest.raises(FatalProviderError, match=r"worker.providers.base:Prompt is not a provider"):
        build_provider(make_settings(llm_provider="worker.providers.base:Prompt"))
