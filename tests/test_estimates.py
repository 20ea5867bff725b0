"""POST /estimate, the dashboard's live estimate, the monthly budget refusing submissions (API and
dashboard), and spend on the account page: the real app, Redis and database, no worker."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from config import Settings
from tests.conftest import AUTH, RedisServer, log_in, store_of
from tests.test_api_fuzz import FUZZ, JSON_VALUES, NASTY_TEXT
from tests.test_continuing import partial_job
from worker.estimate import DEFAULT_INPUT_TOKENS_PER_CALL, DEFAULT_MARGIN, DEFAULT_OUTPUT_TOKENS_PER_CALL
from worker.pipeline import Checkpoint
from worker.store import JobStore

HX = {"HX-Request": "true"}
# One report of the default size with gpt-5-mini ($0.25 and $2 per million tokens), at its high end.
REPORT_EXPECTED_USD = 13 * (DEFAULT_INPUT_TOKENS_PER_CALL * 0.25 + DEFAULT_OUTPUT_TOKENS_PER_CALL * 2.0) / 1e6
REPORT_HIGH_USD = REPORT_EXPECTED_USD * (1 + DEFAULT_MARGIN)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A paid model, so that estimates have a price (the web app builds no provider: no key needed)."""
    return settings.model_copy(update={"llm_provider": "openai", "openai_model": "gpt-5-mini"})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An analyst's browser, logged in as admin."""
    browser = app.test_client()
    log_in(browser)
    return browser


@pytest.fixture
def store(app: Flask) -> JobStore:
    return store_of(app)


def with_budget(app: Flask, budget: float) -> None:
    # Settings are read per request, so a test may set the budget on the app it has.
    app.extensions["settings"].monthly_budget_usd_per_user = budget


def spend(store: JobStore, owner: str, cost: float) -> str:
    """A job of `owner` that cost `cost` and failed: it counts as spent, but is no report whose
    size the estimate would measure (the tests here estimate with the default size)."""
    job = store.create_job("Earlier Co", owner)
    store.mark_started(job.id, worker="w@h", attempt=1)
    store.save_checkpoint(job.id, Checkpoint("plan", "text", "openai", "gpt-5-mini", 1000, 100), cost)
    store.mark_failed(job.id, error="The provider failed.")
    return job.id


def test_estimate_answers_calls_tokens_and_cost_per_model(api_client: FlaskClient) -> None:
    response = api_client.post("/estimate", json={"startups": ["Acme", "Globex", "ACME", "Initech"]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["startups"] == 3  # "ACME" is Acme again
    assert body["calls"] == 39
    assert body["input_tokens"] == 39 * DEFAULT_INPUT_TOKENS_PER_CALL
    assert body["output_tokens"] == 39 * DEFAULT_OUTPUT_TOKENS_PER_CALL
    assert body["cost_usd"]["high"] == pytest.approx(3 * REPORT_HIGH_USD, abs=1e-6)
    assert body["models"] == [
        {"provider": "openai", "model": "gpt-5-mini", "role": "primary", "cost_usd": body["cost_usd"]}
    ]
    assert body["basis"]["source"] == "default"
    assert "budget" not in body  # no MONTHLY_BUDGET_USD_PER_USER

    one = api_client.post("/estimate", json={"startup": "Acme"}).get_json()
    assert one["startups"] == 1 and one["calls"] == 13


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'Send either "startup"'),
        ({"startup": "Acme", "startups": ["Globex"]}, 'Send either "startup"'),
        ({"startup": ""}, '"startup" must not be empty'),
        ({"startup": 42}, '"startup" must be a string'),
        ({"startups": []}, '"startups" must be a non-empty list'),
        ({"startups": "Acme"}, '"startups" must be a non-empty list'),
        ({"startups": [f"Startup {i}" for i in range(51)]}, "51 names, more than the 50"),
        ({"startups": ["Acme", "Line\nbreak"]}, "startups[1]: "),
        (["Acme"], "Send a JSON object"),
    ],
)
def test_estimate_refuses_what_generate_would_refuse_with_json(
    api_client: FlaskClient, body: object, message: str
) -> None:
    response = api_client.post("/estimate", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


@FUZZ
@given(payload=st.one_of(JSON_VALUES, st.fixed_dictionaries({"startups": st.lists(NASTY_TEXT, max_size=60)})))
def test_any_json_gets_a_json_estimate_or_a_json_400(app: Flask, payload: object) -> None:
    body = json.dumps(payload)
    response = app.test_client().post("/estimate", data=body, content_type="application/json", headers=AUTH)
    assert response.status_code in (200, 400), (response.status_code, response.get_data(as_text=True))
    assert response.is_json and ("error" in response.get_json()) == (response.status_code == 400)


def test_estimate_errors_are_json_and_it_needs_a_login(app: Flask, api_client: FlaskClient) -> None:
    deep = api_client.post("/estimate", data="[" * 30000, content_type="application/json")
    assert deep.status_code == 400 and "error" in deep.get_json()
    huge = api_client.post("/estimate", data="x" * 300_000, content_type="application/json")
    assert huge.status_code == 413 and "error" in huge.get_json()
    response = api_client.post("/estimate", data="Acme", headers={"Accept": "text/html"})
    assert response.status_code == 400 and "error" in response.get_json()
    wrong_method = api_client.get("/estimate", headers={"Accept": "text/html"})
    assert wrong_method.status_code == 405 and "error" in wrong_method.get_json()
    stranger = app.test_client().post("/estimate", json={"startup": "Acme"})
    assert stranger.status_code == 401 and "error" in stranger.get_json()


def test_estimate_from_a_session_needs_the_csrf_token(app: Flask, client: FlaskClient) -> None:
    assert client.post("/estimate", json={"startup": "Acme"}).status_code == 200
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    assert client.post("/estimate", json={"startup": "Acme"}).status_code == 403


def test_with_a_budget_the_estimate_says_what_is_left(app: Flask, api_client: FlaskClient, store: JobStore) -> None:
    with_budget(app, 1.0)
    spend(store, "admin", 0.25)
    budget = api_client.post("/estimate", json={"startup": "Acme"}).get_json()["budget"]
    assert budget == {
        "budget_usd": 1.0,
        "spent_usd": 0.25,
        "committed_usd": 0.0,
        "left_usd": 0.75,
        "within_budget": True,
    }


def test_the_api_refuses_a_report_that_could_pass_the_budget_with_402(
    app: Flask, api_client: FlaskClient, store: JobStore, clean_redis: RedisServer
) -> None:
    with_budget(app, 1.0)
    spend(store, "admin", 1.0 - REPORT_HIGH_USD / 2)
    response = api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 402
    body = response.get_json()
    assert body["error"].startswith(f"Over your monthly budget: you have spent ${1.0 - REPORT_HIGH_USD / 2:.2f}")
    assert body["spent_usd"] == pytest.approx(1.0 - REPORT_HIGH_USD / 2) and body["budget_usd"] == 1.0
    assert body["estimate_high_usd"] == pytest.approx(REPORT_HIGH_USD, abs=1e-6)
    assert [job.startup for job in store.recent_jobs(10)] == ["Earlier Co"]
    assert clean_redis.client().llen("celery") == 0

    with_budget(app, 2.0)  # raised: the same request goes through
    assert api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "k1"}).status_code == 202
    with_budget(app, 1.0)  # repeating its key answers with the job it made, which costs nothing more
    again = api_client.post("/generate", json={"startup": "Acme"}, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"


@pytest.mark.parametrize("headers", [HX, {}])
def test_the_dashboard_refuses_a_batch_that_could_pass_the_budget_and_keeps_the_names(
    app: Flask, client: FlaskClient, store: JobStore, clean_redis: RedisServer, headers: dict[str, str]
) -> None:
    with_budget(app, 1.0)
    spend(store, "admin", 1.0 - 1.5 * REPORT_HIGH_USD)  # room for one report, not two
    response = client.post("/jobs", data={"startups": "Acme\nGlobex"}, headers=headers)
    page = response.get_data(as_text=True)
    assert response.status_code == (200 if headers else 402)
    assert "Nothing was queued. Over your monthly budget: you have spent $" in page
    assert "of your $1.00 monthly budget" in page and "2 reports could cost up to" in page
    assert "Acme\nGlobex</textarea>" in page
    assert [job.startup for job in store.recent_jobs(10)] == ["Earlier Co"]
    assert clean_redis.client().llen("celery") == 0

    assert client.post("/jobs", data={"startups": "Acme"}, headers=headers).status_code in (200, 303)
    assert [job.startup for job in store.recent_jobs(10)] == ["Acme", "Earlier Co"]


def test_live_reports_count_against_the_budget(app: Flask, api_client: FlaskClient, store: JobStore) -> None:
    """Queued reports have spent nothing yet, but will: two quick submissions do not both fit."""
    with_budget(app, 1.5 * REPORT_HIGH_USD)
    assert api_client.post("/generate", json={"startup": "Acme"}).status_code == 202
    refused = api_client.post("/generate", json={"startup": "Globex"})
    assert refused.status_code == 402
    assert refused.get_json()["committed_usd"] == pytest.approx(REPORT_HIGH_USD, abs=1e-6)


def test_the_budget_is_per_user(app: Flask, api_client: FlaskClient, store: JobStore) -> None:
    app.extensions["accounts"].create_user("ana", "ana-password-1")
    with_budget(app, 1.0)
    spend(store, "admin", 1.0)
    ana = app.test_client()
    log_in(ana, "ana", "ana-password-1")
    assert ana.post("/jobs", data={"startups": "Acme"}).status_code == 303
    assert api_client.post("/generate", json={"startup": "Globex"}).status_code == 402


def test_the_form_shows_a_live_estimate_of_what_is_typed(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'id="estimate"' in page and 'hx-post="/jobs/estimate"' in page
    assert 'hx-trigger="load, input changed delay:400ms from:#startups"' in page

    fragment = client.post("/jobs/estimate", data={"startups": "Acme\nGlobex\n\nacme"}, headers=HX)
    text = " ".join(fragment.get_data(as_text=True).split())
    low, high = 2 * REPORT_EXPECTED_USD * (1 - DEFAULT_MARGIN), 2 * REPORT_EXPECTED_USD * (1 + DEFAULT_MARGIN)
    assert f"About 26 model calls, ${low:.2f}–{high:.2f} with openai/gpt-5-mini" in text
    assert "default report size" in text and "<html" not in text

    assert client.post("/jobs/estimate", data={"startups": "  \n"}, headers=HX).get_data(as_text=True).strip() == ""
    bad = client.post("/jobs/estimate", data={"startups": "Acme\nA\u202eB"}, headers=HX).get_data(as_text=True)
    assert "Line 2 contains an invisible direction control" in bad


def test_the_live_estimate_says_when_the_batch_would_pass_the_budget(
    app: Flask, client: FlaskClient, store: JobStore
) -> None:
    with_budget(app, 1.0)
    spend(store, "admin", 0.99)
    text = client.post("/jobs/estimate", data={"startups": "Acme"}, headers=HX).get_data(as_text=True)
    text = " ".join(text.split())
    assert "You have $0.01 left of your $1.00 monthly budget: more than this batch may cost" in text
    assert "so it would be refused" in text
    fits = client.post("/estimate", json={"startup": "Acme"}).get_json()["budget"]
    assert fits["within_budget"] is False and fits["left_usd"] == pytest.approx(0.01)


def test_the_account_page_shows_the_users_spend_and_admins_see_everyones(
    app: Flask, client: FlaskClient, store: JobStore
) -> None:
    app.extensions["accounts"].create_user("ana", "ana-password-1")
    spend(store, "admin", 1.25)
    spend(store, "ana", 0.5)
    spend(store, "ana", 0.25)
    page = " ".join(client.get("/account").get_data(as_text=True).split())
    assert "You have spent <strong>$1.25</strong> on reports since the 1st (UTC)." in page
    assert "MONTHLY_BUDGET_USD_PER_USER is not set" in page
    assert 'id="everyones-spend"' in page
    assert "<td>admin</td><td>1</td><td>$1.25</td>" in page and "<td>ana</td><td>2</td><td>$0.75</td>" in page

    with_budget(app, 10.0)
    ana = app.test_client()
    log_in(ana, "ana", "ana-password-1")
    page = " ".join(ana.get("/account").get_data(as_text=True).split())
    assert "You have spent <strong>$0.75</strong> on reports since the 1st (UTC)," in page
    assert "of your <strong>$10.00</strong> monthly budget" in page
    assert 'id="everyones-spend"' not in page and "$1.25" not in page


def test_the_budget_refuses_a_csv_batch_and_queues_nothing(app: Flask, client: FlaskClient, store: JobStore) -> None:
    with_budget(app, 1.0)
    spend(store, "admin", 1.0 - 1.5 * REPORT_HIGH_USD)  # room for one report, not two
    csv_file = (io.BytesIO(b"name,website\nAcme,https://acme.example\nGlobex,\n"), "companies.csv")
    response = client.post("/jobs", data={"companies": csv_file}, content_type="multipart/form-data")
    assert response.status_code == 402
    assert "Nothing was queued. Over your monthly budget" in response.get_data(as_text=True)
    assert [job.startup for job in store.recent_jobs(10)] == ["Earlier Co"]


def test_a_capped_report_counts_against_the_budget_at_no_more_than_its_cap(
    app: Flask, api_client: FlaskClient, store: JobStore
) -> None:
    with_budget(app, 1.0)
    spend(store, "admin", 1.0 - REPORT_HIGH_USD / 2)  # no room for a report at its high estimate
    assert api_client.post("/generate", json={"startup": "Acme"}).status_code == 402
    capped = api_client.post("/generate", json={"startup": "Acme", "max_cost_usd": REPORT_HIGH_USD / 4})
    assert capped.status_code == 202, capped.get_json()


def test_a_budget_of_nothing_is_a_budget_on_the_account_page(app: Flask, client: FlaskClient) -> None:
    with_budget(app, 0.0)
    page = " ".join(client.get("/account").get_data(as_text=True).split())
    assert "of your <strong>$0.00</strong> monthly budget" in page
    assert "MONTHLY_BUDGET_USD_PER_USER is not set" not in page
    assert client.post("/jobs", data={"startups": "Acme"}).status_code == 402


def test_a_name_that_joins_a_report_being_written_adds_nothing_to_the_budget(
    app: Flask, client: FlaskClient, api_client: FlaskClient, store: JobStore, clean_redis: RedisServer
) -> None:
    with_budget(app, 1.5 * REPORT_HIGH_USD)
    assert api_client.post("/generate", json={"startup": "Acme"}).status_code == 202  # commits one report
    joined = api_client.post("/generate", json={"startup": "acme"})
    assert joined.status_code == 200 and joined.get_json()["status"] == "joined"
    assert client.post("/jobs", data={"startups": "Acme"}).status_code == 303
    # A new name, or a fresh report, would start one, and there is no room for a second.
    assert client.post("/jobs", data={"startups": "Acme\nGlobex"}).status_code == 402
    assert client.post("/jobs", data={"startups": "Acme", "fresh": "on"}).status_code == 402
    assert [job.startup for job in store.recent_jobs(10)] == ["Acme"]


def test_the_estimates_within_budget_is_what_a_submission_would_get(
    app: Flask, client: FlaskClient, api_client: FlaskClient, store: JobStore, clean_redis: RedisServer
) -> None:
    with_budget(app, 1.5 * REPORT_HIGH_USD)
    assert api_client.post("/generate", json={"startup": "Acme"}).status_code == 202  # half a report left
    # Acme would join the report being written; Globex would start one, which may cost more than is left.
    assert api_client.post("/estimate", json={"startup": "Acme"}).get_json()["budget"]["within_budget"] is True
    assert api_client.post("/estimate", json={"startup": "Globex"}).get_json()["budget"]["within_budget"] is False
    # Under a default cap of a quarter report, Globex fits, as its submission does.
    app.extensions["settings"].max_cost_per_report_usd = REPORT_HIGH_USD / 4
    assert api_client.post("/estimate", json={"startup": "Globex"}).get_json()["budget"]["within_budget"] is True
    fragment = client.post("/jobs/estimate", data={"startups": "Globex"}, headers=HX).get_data(as_text=True)
    assert "would be refused" not in fragment
    assert api_client.post("/generate", json={"startup": "Globex"}).status_code == 202


def test_continuing_a_partial_report_is_held_to_the_budget(
    app: Flask, client: FlaskClient, api_client: FlaskClient, store: JobStore, clean_redis: RedisServer
) -> None:
    job_id = partial_job(store)  # spent $0.40 this month, stopped at its $0.50 cap
    with_budget(app, 0.4 + REPORT_HIGH_USD / 2)
    refused = api_client.post(f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 1.5})
    assert refused.status_code == 402 and refused.get_json()["error"].startswith("Over your monthly budget")
    form = client.post(f"/jobs/{job_id}/continue", data={"max_cost_usd": "1.5"})
    assert form.status_code == 402 and "Over your monthly budget" in form.get_data(as_text=True)
    assert store.get_job(job_id).max_cost_usd == 0.5 and clean_redis.client().llen("celery") == 0
    # A new cap with room for what it may spend is queued.
    assert (
        api_client.post(f"/api/jobs/{job_id}/continue", json={"max_cost_usd": 0.4 + REPORT_HIGH_USD / 4}).status_code
        == 202
    )
