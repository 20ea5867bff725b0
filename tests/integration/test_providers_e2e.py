"""Whole reports through the real SDK clients in a real worker, against the fake provider server:
each provider, rate limits, server-error storms, bad keys, fallback, malformed and hung answers."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import AUTH, follow_job, provider_env, submit_report
from tests.fakes.llm_server import FakeLLMServer, Reply
from worker.pipeline import SECTIONS, TOTAL_STEPS

pytestmark = pytest.mark.integration


submit = submit_report


@pytest.mark.parametrize(
    ("name", "model"),
    [("openai", "gpt-5-mini"), ("anthropic", "claude-sonnet-4-6"), ("gemini", "gemini-2.5-flash")],
)
def test_a_whole_report_through_each_provider(
    start_worker, api_server: str, fake_llm: FakeLLMServer, name: str, model: str, clean_redis
) -> None:
    start_worker(**provider_env(fake_llm, name))
    final, _ = follow_job(api_server, submit(api_server, "Acme Robotics"))

    assert final["state"] == "SUCCESS", final
    assert len(fake_llm.successes(name)) == TOTAL_STEPS == len(fake_llm.requests)
    assert all("Acme Robotics" in r.prompt for r in fake_llm.requests)
    report = final["result"]
    assert "Demo output" not in report
    assert all(f"## {s.title}\n\nFake analysis for:" in report for s in SECTIONS)
    assert f"| Snapshot | {name} | {model} |" in report  # the footer says who wrote what
    assert {(s["provider"], s["model"]) for s in final["sections"]} == {(name, model)}
    usage = final["usage"]
    assert usage["calls"] == TOTAL_STEPS and usage["retries"] == 0

    # Nothing secret or bulky reaches Redis: the task carries a job id, its result a summary.
    stored = b" ".join(
        value
        for db in (0, 1)
        for key in clean_redis.client(db).keys("*")
        if clean_redis.client(db).type(key) == b"string"
        for value in [clean_redis.client(db).get(key)]
    )
    assert b"test-" + name.encode() + b"-key" not in stored
    assert b"investment memo" not in stored and b"Fake analysis" not in stored
    assert usage["input_tokens"] > 1000 and usage["output_tokens"] > 0 and usage["cost_usd"] > 0


def test_429_with_retry_after_is_honoured_and_each_step_paid_once(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    fake_llm.script("openai", *[Reply.rate_limited(2)] * 3)
    start_worker(**provider_env(fake_llm, "openai", RETRY_BACKOFF_BASE="0.2"))
    final, _ = follow_job(api_server, submit(api_server, "Throttled Ltd"), timeout=90)

    assert final["state"] == "SUCCESS", final
    times = [r.at for r in fake_llm.requests]
    gaps = [later - earlier for earlier, later in zip(times[:3], times[1:4], strict=True)]
    assert all(2.0 <= gap < 4.0 for gap in gaps), gaps
    assert len(fake_llm.successes()) == TOTAL_STEPS  # each step paid for once
    assert len(fake_llm.requests) == TOTAL_STEPS + 3
    assert final["usage"]["retries"] == 3 and final["usage"]["calls"] == TOTAL_STEPS


def test_a_500_storm_on_a_later_step_resumes_without_repeating_earlier_steps(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    fake_llm.script("openai", *[Reply.ok()] * 5, *[Reply.server_error(500)] * 4)
    # One step at a time, so that the storm meets the steps in a known order.
    env = provider_env(fake_llm, "openai", LLM_MAX_RETRIES="1", RETRY_BACKOFF_BASE="0.2", REPORT_PARALLELISM="1")
    start_worker(**env)
    final, seen = follow_job(api_server, submit(api_server, "Stormy Inc"), timeout=90)

    assert final["state"] == "SUCCESS", final
    assert final["attempts"] == 3 and any(s["state"] == "RETRY" for s in seen)
    paid = fake_llm.successes()
    assert len(paid) == TOTAL_STEPS
    assert len({r.prompt for r in paid}) == TOTAL_STEPS  # no step was asked (and paid) twice
    assert [r.status for r in fake_llm.requests[5:9]] == [500] * 4


def test_a_bad_key_fails_within_seconds_naming_the_variable(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply.unauthorized())
    start_worker(**provider_env(fake_llm, "openai"))
    started = time.monotonic()
    final, _ = follow_job(api_server, submit(api_server, "Locked Out Ltd"))

    assert time.monotonic() - started < 10
    assert final["state"] == "FAILURE"
    assert final["error"] == "OpenAI rejected the API key (401): check OPENAI_API_KEY."
    assert final["attempts"] == 1 and len(fake_llm.requests) == 1  # no retries spent


def test_fallback_completes_the_report_and_the_footer_says_who_wrote_what(
    start_worker, api_server: str, fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply.server_error(503))
    start_worker(**provider_env(fake_llm, "openai", LLM_FALLBACK="anthropic", LLM_MAX_RETRIES="1"))
    final, _ = follow_job(api_server, submit(api_server, "Backup Plan GmbH"))

    assert final["state"] == "SUCCESS", final
    assert {s["provider"] for s in final["sections"]} == {"anthropic"}
    assert "| Snapshot | anthropic | claude-sonnet-4-6 |" in final["result"]
    assert len(fake_llm.of("openai")) == 2  # its retries once, then skipped for the rest of the job
    assert len(fake_llm.successes("anthropic")) == TOTAL_STEPS
    assert final["usage"]["retries"] == 2

    page = requests.get(f"{api_server}{final['report_url']}", headers=AUTH, timeout=5).text
    assert "anthropic/claude-sonnet-4-6" in page and "Estimated cost" in page


@pytest.mark.parametrize(
    ("reply", "message"),
    [(Reply.garbled(), "OpenAI returned a malformed response"), (Reply.never_answers(), "did not answer within 1 s")],
)
def test_malformed_and_hung_answers_fail_after_bounded_retries_and_free_the_slot(
    start_worker, api_server: str, fake_llm: FakeLLMServer, reply: Reply, message: str
) -> None:
    fake_llm.set_default("openai", reply)
    start_worker(
        concurrency=1,
        **provider_env(
            fake_llm, "openai", LLM_MAX_RETRIES="1", TASK_MAX_RETRIES="1", LLM_TIMEOUT="1", RETRY_BACKOFF_BASE="0.2"
        ),
    )
    final, _ = follow_job(api_server, submit(api_server, "Broken Answers AG"), timeout=60)

    assert final["state"] == "FAILURE"
    assert message in final["error"] and "Gave up after 2 attempts" in final["error"]
    assert len(fake_llm.requests) == 4  # (1 + 1 retry) per attempt × (1 + 1 job retry)

    fake_llm.set_default("openai", Reply.ok())
    after, _ = follow_job(api_server, submit(api_server, "Next In Line"), timeout=60)
    assert after["state"] == "SUCCESS"  # the only worker slot was free again
