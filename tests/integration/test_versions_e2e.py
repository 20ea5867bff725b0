"""Versions through the shipped processes: two reports on one startup, written by a real Celery
worker and read through the API under gunicorn, are two versions of one company, and the second
one's changes are stored by the worker."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import AUTH, follow_job, submit_report, wait_for

pytestmark = pytest.mark.integration


def test_two_reports_on_one_startup_are_two_versions_of_one_company(start_worker, api_server: str) -> None:
    start_worker(OFFLINE_STEP_DELAY="0")
    first, _ = follow_job(api_server, submit_report(api_server, "Initech"))
    second, _ = follow_job(api_server, submit_report(api_server, "Initech"))
    assert first["state"] == second["state"] == "SUCCESS"
    assert first["company_url"] == second["company_url"]

    def company_with_its_change() -> dict | None:
        # The worker records a version's change just after it stores the report (`record_version`).
        company = requests.get(f"{api_server}{second['company_url']}", headers=AUTH, timeout=5).json()
        return company if company["versions"][0]["material"] is not None else None

    company = wait_for(company_with_its_change, 10, "the second version's change")
    assert company["name"] == "Initech"
    assert [v["job_id"] for v in company["versions"]] == [second["job_id"], first["job_id"]]
    # The demo writes the same report for the same name: a change recorded, and not material.
    assert [v["material"] for v in company["versions"]] == [False, None]
    changes = requests.get(f"{api_server}{second['changes_url']}", headers=AUTH, timeout=5).json()
    assert changes["previous_job_id"] == first["job_id"]
    assert (changes["material"], changes["figures"], changes["sections"]) == (False, [], [])
