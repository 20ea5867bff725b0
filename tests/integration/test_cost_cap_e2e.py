"""Issue 18's cost cap end to end: the API under gunicorn, a real Celery worker (its shipped pool
and REPORT_PARALLELISM, all sections at once), the OpenAI SDK against the fake provider server.
A cap reached mid-report leaves a partial report that lists what it lacks, with no call made
after the cap; Continue under a higher cap writes only the missing steps."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.conftest import AUTH, follow_job, provider_env
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.test_pipeline import TITLES, step_of
from worker.pipeline import NOT_WRITTEN, PLAN_STEP, SYNTHESIS_STEP, TOTAL_STEPS, step_labels
from worker.store import JobStore

pytestmark = pytest.mark.integration

#: A dollar per thousand tokens, in and out: a call's worst case (prompt plus 2,000 tokens out)
#: is about $2.5, and what it really costs (the fake server's usage) well under $1.
PRICES = json.dumps({"gpt-5-mini": [1000, 1000]})
CAP = 6.0


def test_a_cap_reached_mid_report_leaves_a_partial_report_that_continue_finishes(
    start_worker, api_server: str, settings, fake_llm: FakeLLMServer
) -> None:
    fake_llm.set_default("openai", Reply.ok(delay=0.3))  # the sections overlap in flight
    start_worker(**provider_env(fake_llm, "openai", LLM_PRICES=PRICES))
    response = requests.post(
        f"{api_server}/generate", json={"startup": "Capped Co", "max_cost_usd": CAP}, headers=AUTH, timeout=10
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    final, _ = follow_job(api_server, job_id)
    assert final["state"] == "SUCCESS" and final["partial"] is True, final
    assert final["max_cost_usd"] == CAP and 0 < final["cost_usd"] <= CAP  # under the cap, not just near it
    store = JobStore(settings.database_url)
    written = set(store.load_checkpoints(job_id))
    assert PLAN_STEP in written and SYNTHESIS_STEP not in written and 2 <= len(written) < TOTAL_STEPS - 1
    missing = [TITLES[key] for key, _ in step_labels() if key not in written]
    assert final["unwritten"] == missing
    top = final["result"].split("## Summary")[0]
    assert f"Not written: {', '.join(missing)}." in top and f"cost cap of ${CAP:.2f}" in top

    # No call after the cap: every request the provider received is a stored step, and none follows.
    time.sleep(1.0)
    assert len(fake_llm.requests) == final["usage"]["calls_sent"] == final["calls"] == len(written)

    # Continue under a higher cap: the same job, only the missing steps, each once.
    before = len(fake_llm.requests)
    response = requests.post(
        f"{api_server}/api/jobs/{job_id}/continue", json={"max_cost_usd": 100}, headers=AUTH, timeout=10
    )
    assert response.status_code == 202, response.text
    final, _ = follow_job(api_server, job_id)
    assert final["state"] == "SUCCESS" and final["partial"] is False, final
    asked = [step_of(r.prompt) for r in fake_llm.requests[before:]]
    assert sorted(asked) == sorted({key for key, _ in step_labels()} - written)
    assert final["calls"] == TOTAL_STEPS and final["max_cost_usd"] == 100
    assert "Partial report" not in final["result"] and NOT_WRITTEN not in final["result"]
