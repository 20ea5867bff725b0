"""The acceptance of issue 18's import and export: a batch of 20 companies imported from a CSV on
the dashboard runs through a real worker, and compares in one table, downloadable as CSV and XLSX."""

from __future__ import annotations

import csv
import io
import re

import docx
import openpyxl
import pytest
import requests

from config import Settings
from tests.conftest import ADMIN_PASSWORD, AUTH, csrf_token_of, wait_for
from worker.facts import FACT_FIELDS
from worker.models import FINISHED_STATES, JobState
from worker.store import JobStore

pytestmark = pytest.mark.integration

COMPANIES = [f"Batch Company {n:02d}" for n in range(1, 21)]
FACT_KEYS = [key for key, _ in FACT_FIELDS]


def logged_in(base: str) -> requests.Session:
    """An analyst's browser: logged in through the form, sending the CSRF token as the pages do."""
    browser = requests.Session()
    token = csrf_token_of(browser.get(f"{base}/login", timeout=5).text)
    form = {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
    assert browser.post(f"{base}/login", data=form, timeout=5).status_code == 200
    browser.headers["X-CSRFToken"] = csrf_token_of(browser.get(f"{base}/", timeout=5).text)
    return browser


def test_twenty_companies_from_a_csv_run_and_compare_in_one_table(
    start_worker, api_server: str, settings: Settings
) -> None:
    start_worker()
    browser = logged_in(api_server)
    rows = "".join(f'{name},,"Notes on {name}, from a call"\n' for name in COMPANIES)
    upload = ("name,website,notes\n" + rows + ",,no name on this row\n").encode()
    response = browser.post(
        f"{api_server}/jobs", files={"companies": ("batch.csv", upload, "text/csv")}, data={"startups": ""}, timeout=30
    )
    assert response.status_code == 200  # the redirect to the dashboard, followed
    assert "Queued 20 reports from batch.csv." in response.text
    assert "Row 22: the name must not be empty." in response.text

    store = JobStore(settings.database_url)
    jobs = sorted(store.recent_jobs(50), key=lambda job: job.startup)
    assert [job.startup for job in jobs] == COMPANIES
    assert all(job.notes == f"Notes on {job.startup}, from a call" for job in jobs)

    def all_finished() -> bool:
        return all(store.get_job(job.id).state in FINISHED_STATES for job in jobs)

    wait_for(all_finished, 300, "the 20 reports to finish", interval=0.5)
    assert {store.get_job(job.id).state for job in jobs} == {JobState.SUCCESS}
    store.dispose()
    ids = ",".join(job.id for job in jobs)

    page = browser.get(f"{api_server}/compare", params={"ids": ids}, timeout=30)
    assert page.status_code == 200
    heads = re.findall(r'<th scope="col" class="compare__company">\s*<a href="/reports/([^"]+)">', page.text)
    assert heads == [job.id for job in jobs]
    assert len(re.findall(r'<tr class="compare__row', page.text)) == len(FACT_FIELDS)

    data = requests.get(f"{api_server}/api/compare", params={"ids": ids}, headers=AUTH, timeout=30).json()
    assert [company["startup"] for company in data["companies"]] == COMPANIES
    assert [fact["key"] for fact in data["facts"]] == [key for key, _ in FACT_FIELDS]
    # Every report kept its key facts: the rows hold what each report states, the recommendation on top.
    assert all(company["facts_kept"] for company in data["companies"])
    stages = [company["facts"][FACT_KEYS.index("stage")]["value"] for company in data["companies"]]
    recommendations = [company["facts"][0]["value"] for company in data["companies"]]
    assert all(stages) and set(recommendations) <= {"Pass", "Watch", "Take a meeting"} and all(recommendations)

    as_csv = browser.get(f"{api_server}/compare.csv", params={"ids": ids}, timeout=30)
    table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [row[0] for row in table[1:]] == COMPANIES
    assert [row[1] for row in table[1:]] == [f"{api_server}/reports/{job.id}" for job in jobs]
    stage_column = table[0].index("Stage")
    assert [row[stage_column].removeprefix("'") for row in table[1:]] == stages

    as_xlsx = browser.get(f"{api_server}/compare.xlsx", params={"ids": ids}, timeout=30)
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == COMPANIES
    assert sheet.max_row == 21
    recommendation_column = [cell.value for cell in sheet[1]].index("Recommendation")
    assert [row[recommendation_column] for row in sheet.iter_rows(min_row=2, values_only=True)] == recommendations

    # Each report downloads as a Word document with every section the pipeline wrote.
    report = requests.get(f"{api_server}/reports/{jobs[0].id}.docx", headers=AUTH, timeout=30)
    document = docx.Document(io.BytesIO(report.content))
    word_headings = [p.text for p in document.paragraphs if p.style.name == "Heading 1"]
    markdown = requests.get(f"{api_server}/reports/{jobs[0].id}.md", headers=AUTH, timeout=30).text
    assert word_headings == re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert [cell.text for cell in document.tables[-1].rows[0].cells] == ["Step", "Provider", "Model"]  # Written by
