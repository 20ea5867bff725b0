"""The OpenAI, Anthropic and Gemini providers through their real SDK clients, talking HTTP to the
fake provider server: answers, usage, error classes, retries and waits, fallback, selection."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import make_settings, provider_env
from tests.fakes.llm_server import FakeLLMServer, Reply
from worker.pricing import estimate_cost, price_for
from worker.providers import build_provider, resolve_provider_name
from worker.providers.base import (
    FatalProviderError,
    Prompt,
    Provider,
    TransientProviderError,
    retry_after_seconds,
)
from worker.providers.fallback import FallbackProvider

PROMPT = Prompt(system="You are an analyst.", user="Write the Snapshot of Acme.", step="snapshot", startup="Acme")
API_OF = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}
KEY_OF = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}


def provider(server: FakeLLMServer, name: str, **overrides: object) -> Provider:
    env = {k.lower(): v for k, v in provider_env(server, name).items()}
    env.update(llm_timeout=2.0, llm_max_retries=2)
    # No shared rate limit here (it would need a Redis): tests of the limiter give it their own.
    env.update(openai_rpm=0, openai_tpm=0, anthropic_rpm=0, anthropic_tpm=0, gemini_rpm=0, gemini_tpm=0)
    env.update(overrides)
    return build_provider(make_settings(**env))


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini"])
def test_each_provider_answers_with_usage_through_its_sdk(fake_llm: FakeLLMServer, name: str) -> None:
    completion = provider(fake_llm, name).complete(PROMPT)
    assert completion.text.startswith("Fake analysis for: Write the Snapshot of Acme.")
    assert completion.provider == name and completion.input_tokens > 0 and completion.output_tokens > 0
    (request,) = fake_llm.requests
    assert request.api == API_OF[name]
    defaults = {"openai": "gpt-5-mini", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash"}
    assert request.model == defaults[name]
    assert f"test-{name}-key" in request.authorization


@pytest.mark.parametrize(("header_ms", "wait"), [(False, 1.0), (True, 0.4)])
def test_a_429_waits_what_the_server_asked(fake_llm: FakeLLMServer, header_ms: bool, wait: float) -> None:
    fake_llm.script("openai", Reply.rate_limited(wait, ms=header_ms))
    completion = provider(fake_llm, "openai").complete(PROMPT)
    first, second = fake_llm.requests
    gap = second.at - first.at
    assert wait <= gap < wait + 0.1 * wait + 0.5, gap
    assert completion.failed_attempts == 1 and len(fake_llm.successes()) == 1


def test_server_errors_are_retried_with_backoff_then_succeed(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("openai", Reply.server_error(500), Reply.server_error(503))
    completion = provider(fake_llm, "openai").complete(PROMPT)
    assert completion.failed_attempts == 2 and [r.status for r in fake_llm.requests] == [500, 503, 200]


def test_every_attempt_is_announced_before_it_is_sent(fake_llm: FakeLLMServer) -> None:
    """What the worker counts before each call, so that a call in flight at a crash is on the books."""
    seen_by_server_before: list[int] = []
    chain = provider(fake_llm, "openai", llm_fallback="anthropic", llm_max_retries=0)
    fake_llm.script("openai", Reply.server_error(500))
    completion = chain.complete(PROMPT, lambda p, _: seen_by_server_before.append(len(fake_llm.requests)))
    # openai failed once (no retries), then anthropic answered: two attempts, each told before it
    # reached the server.
    assert completion.provider == "anthropic" and completion.failed_attempts == 1
    assert seen_by_server_before == [0, 1] and len(fake_llm.requests) == 2


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply.overloaded(), "is overloaded"),
        (Reply.server_error(500), "server error (500)"),
        (Reply(status=408, error="timeout"), "timed out on its side"),
        (Reply(status=409, error="conflict"), "conflict"),
        (Reply.garbled(), "malformed response"),
    ],
)
def test_transient_errors_are_retried_a_bounded_number_of_times(
    fake_llm: FakeLLMServer, reply: Reply, words: str
) -> None:
    fake_llm.set_default("anthropic", reply)
    with pytest.raises(TransientProviderError, match=re.escape(words)) as caught:
        provider(fake_llm, "anthropic", llm_max_retries=2).complete(PROMPT)
    assert len(fake_llm.requests) == 3 and caught.value.failed_attempts == 3
    assert caught.value.provider == "anthropic"


def test_a_request_that_never_answers_times_out_and_is_retried(fake_llm: FakeLLMServer) -> None:
    fake_llm.set_default("openai", Reply.never_answers())
    started = time.monotonic()
    with pytest.raises(TransientProviderError, match=r"did not answer within 0.5 s"):
        provider(fake_llm, "openai", llm_timeout=0.5, llm_max_retries=1).complete(PROMPT)
    assert len(fake_llm.requests) == 2
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini"])
def test_a_bad_key_fails_at_once_naming_the_variable(fake_llm: FakeLLMServer, name: str) -> None:
    fake_llm.set_default(API_OF[name], Reply.unauthorized())
    with pytest.raises(FatalProviderError) as caught:
        provider(fake_llm, name).complete(PROMPT)
    assert str(caught.value).endswith(f"rejected the API key (401): check {KEY_OF[name]}.")
    assert len(fake_llm.requests) == 1  # no retries spent on a bad key


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(status=404, error="model not found"), "does not know the model 'gpt-5-mini' (404): check OPENAI_MODEL"),
        (Reply(status=400, error="Unsupported parameter"), "rejected the request (400): Error code: 400"),
        (Reply(status=403, error="forbidden"), "check OPENAI_API_KEY"),
        (Reply(refusal=True), "refused to write this section"),
    ],
)
def test_fatal_errors_are_not_retried(fake_llm: FakeLLMServer, reply: Reply, words: str) -> None:
    fake_llm.script("openai", reply)
    with pytest.raises(FatalProviderError, match=re.escape(words)):
        provider(fake_llm, "openai").complete(PROMPT)
    assert len(fake_llm.requests) == 1


def test_anthropic_refusal_is_fatal(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("anthropic", Reply(refusal=True))
    with pytest.raises(FatalProviderError, match="Anthropic refused"):
        provider(fake_llm, "anthropic").complete(PROMPT)


def test_a_wait_longer_than_a_worker_slot_is_worth_goes_up_at_once(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("openai", Reply.rate_limited(120))
    started = time.monotonic()
    with pytest.raises(TransientProviderError) as caught:
        provider(fake_llm, "openai", llm_max_retry_wait=60).complete(PROMPT)
    assert time.monotonic() - started < 2 and caught.value.retry_after == 120
    assert len(fake_llm.requests) == 1


def test_fallback_takes_over_and_skips_the_dead_provider_afterwards(fake_llm: FakeLLMServer) -> None:
    fake_llm.set_default("openai", Reply.server_error(502))
    chain = provider(fake_llm, "openai", llm_fallback="anthropic, gemini", llm_max_retries=1)
    assert isinstance(chain, FallbackProvider)
    first = chain.complete(PROMPT)
    assert first.provider == "anthropic" and first.failed_attempts == 2
    second = chain.complete(PROMPT)
    assert second.provider == "anthropic" and second.failed_attempts == 0
    assert len(fake_llm.of("openai")) == 2 and len(fake_llm.of("anthropic")) == 2


def test_a_provider_found_down_by_one_task_is_skipped_by_the_next(fake_llm: FakeLLMServer) -> None:
    """A report runs as several tasks, each with its own provider chain: the state crosses over."""
    fake_llm.set_default("openai", Reply.server_error(502))
    reported: list[str] = []
    settings = {k.lower(): v for k, v in provider_env(fake_llm, "openai").items()}
    settings.update(llm_fallback="anthropic", llm_max_retries=0, openai_rpm=0, anthropic_rpm=0)
    settings.update(openai_tpm=0, anthropic_tpm=0)
    first_task = build_provider(make_settings(**settings), on_down=reported.append)
    assert first_task.complete(PROMPT).provider == "anthropic"
    assert reported == ["openai:transient"]
    next_task = build_provider(make_settings(**settings), down=reported)
    assert next_task.complete(PROMPT).provider == "anthropic"
    assert len(fake_llm.of("openai")) == 1  # asked by the first task only


def test_when_every_provider_fails_the_error_says_so(fake_llm: FakeLLMServer) -> None:
    fake_llm.set_default("openai", Reply.unauthorized())
    fake_llm.set_default("anthropic", Reply.overloaded())
    with pytest.raises(TransientProviderError, match=r"OPENAI_API_KEY.*Then: Anthropic is overloaded"):
        provider(fake_llm, "openai", llm_fallback="anthropic", llm_max_retries=0).complete(PROMPT)


def test_auto_takes_the_first_provider_with_a_key() -> None:
    assert resolve_provider_name(make_settings(gemini_api_key="g", anthropic_api_key="a")) == "anthropic"
    assert resolve_provider_name(make_settings(gemini_api_key="g")) == "gemini"
    assert resolve_provider_name(make_settings(openai_api_key="o", gemini_api_key="g")) == "openai"
    assert resolve_provider_name(make_settings()) == "offline"


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini"])
def test_a_chosen_provider_without_a_key_names_the_variable(name: str) -> None:
    with pytest.raises(FatalProviderError, match=f"needs an API key: set {KEY_OF[name]}"):
        build_provider(make_settings(llm_provider=name))


def test_an_openai_compatible_server_needs_no_key(fake_llm: FakeLLMServer) -> None:
    settings = make_settings(
        llm_provider="openai", openai_base_url=f"{fake_llm.url}/v1", openai_model="llama3.1", openai_rpm=0, openai_tpm=0
    )
    completion = build_provider(settings).complete(PROMPT)
    assert completion.model == "llama3.1" and fake_llm.requests[0].model == "llama3.1"


def test_keys_never_print() -> None:
    settings = make_settings(openai_api_key="very-secret-value")
    assert "very-secret-value" not in repr(settings) and "very-secret-value" not in str(settings.openai_api_key)


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "2"}) == 2
    assert retry_after_seconds({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}) > 1e6
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_costs_come_from_the_price_table() -> None:
    prices = make_settings().llm_prices
    assert estimate_cost(prices, "gpt-5-mini", 1_000_000, 1_000_000) == pytest.approx(2.25)
    assert price_for(prices, "claude-sonnet-4-5-20250929") == prices["claude-sonnet-4-5"]
    assert estimate_cost(prices, "my-local-llama", 10, 10) is None
    custom = make_settings(llm_prices={"my-local-llama": (0.0, 0.0)}).llm_prices
    assert estimate_cost(custom, "my-local-llama", 10, 10) == 0.0 and "gpt-5-mini" in custom
