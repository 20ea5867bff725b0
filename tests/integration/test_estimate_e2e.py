"""The estimate against what reports really cost: a real worker, the real OpenAI SDK and the fake
provider server, the estimate asked of the web app before the reports are submitted."""

from __future__ import annotations

import pytest
import requests

from config import Settings
from tests.conftest import AUTH, follow_job, provider_env, submit_report
from tests.fakes.llm_server import FakeLLMServer
from webapp import create_app

pytestmark = pytest.mark.integration

TOLERANCE = 0.30


def estimate_of(settings: Settings, names: list[str]) -> dict:
    """POST /estimate to a web app that names the worker's provider (the API server of the
    fixtures runs the offline settings, which would price every call at nothing)."""
    app = create_app(settings.model_copy(update={"llm_provider": "openai", "openai_model": "gpt-5-mini"}))
    try:
        response = app.test_client().post("/estimate", json={"startups": names}, headers=AUTH)
        assert response.status_code == 200, response.get_json()
        return response.get_json()
    finally:
        app.extensions["jobs"].workers.stop()


def run_reports(api_server: str, names: list[str]) -> list[dict]:
    finals = [follow_job(api_server, submit_report(api_server, name), timeout=90)[0] for name in names]
    failed = {final["startup"]: final.get("error") for final in finals if final["state"] != "SUCCESS"}
    assert not failed, failed
    return finals


def within(estimated: float, actual: float) -> bool:
    return abs(estimated - actual) <= TOLERANCE * actual


def test_the_estimate_is_within_30_percent_of_the_calls_and_tokens_the_provider_was_paid_for(
    start_worker, api_server: str, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    start_worker(**provider_env(fake_llm, "openai"))
    assert estimate_of(settings, ["Anything"])["basis"]["source"] == "default"  # nothing measured yet
    run_reports(api_server, ["Acme Robotics", "Northwind Health Analytics", "Zeta"])

    names = ["Globex", "Initech Systems International", "Umbrella Bio", "Hooli"]
    estimate = estimate_of(settings, names)
    assert estimate["basis"] == {"source": "history", "reports_measured": 3, "margin": estimate["basis"]["margin"]}
    fake_llm.reset()
    finals = run_reports(api_server, names)

    calls = len(fake_llm.successes("openai"))
    assert calls == len(fake_llm.requests)  # every call answered: nothing paid twice
    tokens_in = sum(final["usage"]["input_tokens"] for final in finals)
    tokens_out = sum(final["usage"]["output_tokens"] for final in finals)
    cost = sum(final["usage"]["cost_usd"] for final in finals)
    assert within(estimate["calls"], calls), (estimate["calls"], calls)
    assert within(estimate["input_tokens"], tokens_in), (estimate["input_tokens"], tokens_in)
    assert within(estimate["output_tokens"], tokens_out), (estimate["output_tokens"], tokens_out)
    assert estimate["cost_usd"]["low"] <= cost <= estimate["cost_usd"]["high"], (estimate["cost_usd"], cost)
    assert estimate["models"][0]["model"] == "gpt-5-mini" == finals[0]["sections"][0]["model"]
    # The API server answers the same route (under gunicorn), with its own provider: the demo one.
    offline = requests.post(f"{api_server}/estimate", json={"startups": names}, headers=AUTH, timeout=5).json()
    assert offline["calls"] == estimate["calls"] and offline["cost_usd"] == {"low": 0.0, "high": 0.0}
