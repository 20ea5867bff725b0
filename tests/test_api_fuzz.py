"""Property-based: whatever arrives at the API, the answer is JSON with a 2xx or 4xx status, never a
500, and the database holds exactly the jobs that were accepted."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config import Settings
from tests.conftest import AUTH
from webapp import create_app

NASTY_CHARACTERS = st.sampled_from(["\x00", "\u202e", "\u200f", "\ufeff", "\n", "\t", "\x7f", "\ud7ff", "„", "😀"])
NASTY_TEXT = st.lists(st.one_of(st.text(max_size=20), NASTY_CHARACTERS), max_size=12).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | NASTY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NASTY_TEXT, children, max_size=4),
    max_leaves=12,
)
PAYLOADS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"startup": JSON_VALUES}),
    st.fixed_dictionaries({"startup": NASTY_TEXT}, optional={"fresh": JSON_VALUES}),
)
FUZZ = hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def app(settings: Settings) -> Flask:
    settings.submit_rate_per_minute = 100_000
    settings.max_live_jobs_per_user = 100_000
    return create_app(settings)


@FUZZ
@given(payload=PAYLOADS, idempotency=st.one_of(st.none(), st.text(max_size=250).filter(lambda k: "\n" not in k)))
def test_any_json_gets_a_json_answer_and_only_accepted_jobs_are_stored(
    app: Flask, payload: object, idempotency: str | None
) -> None:
    client = app.test_client()
    store = app.extensions["jobs"].store
    before = {job.id for job in store.recent_jobs(100_000)}
    headers = dict(AUTH)
    if idempotency is not None and idempotency.isprintable() and idempotency.isascii():
        headers["Idempotency-Key"] = idempotency
    body = json.dumps(payload)
    response = client.post("/generate", data=body, content_type="application/json", headers=headers)
    assert response.status_code in (200, 202, 400, 413), (response.status_code, response.get_data(as_text=True))
    assert response.is_json
    after = {job.id for job in store.recent_jobs(100_000)}
    if response.status_code == 202:
        assert after - before == {response.get_json()["job_id"]}
    else:
        assert after == before
        if response.status_code == 400:
            assert response.get_json()["error"]


@FUZZ
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"]),
)
def test_any_bytes_get_a_json_answer(app: Flask, raw: bytes, content_type: str) -> None:
    response = app.test_client().post("/generate", data=raw, content_type=content_type or None, headers=AUTH)
    assert response.status_code in (200, 202, 400, 413, 415), response.status_code
    assert response.is_json


@FUZZ
@given(segment=st.text(min_size=1, max_size=60).filter(lambda s: "/" not in s and "\x00" not in s))
def test_random_job_ids_and_paths_are_404s_not_500s(app: Flask, segment: str) -> None:
    client = app.test_client()
    for path in (f"/status/{segment}", f"/reports/{segment}.md", f"/{segment}", f"/api/jobs/{segment}/cancel"):
        method = client.post if path.endswith("/cancel") else client.get
        response = method(path, headers=AUTH)
        assert response.status_code < 500, (path, response.status_code)
        assert response.status_code in (200, 404, 405)


def test_a_ten_megabyte_body_is_refused_with_413(app: Flask) -> None:
    body = json.dumps({"startup": "x" * (10 * 1024 * 1024)})
    response = app.test_client().post("/generate", data=body, content_type="application/json", headers=AUTH)
    assert response.status_code == 413 and response.is_json
    assert app.extensions["jobs"].store.recent_jobs(10) == []
