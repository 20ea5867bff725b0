"""Issue 17's acceptance, end to end with the shipped processes: a Celery worker (`run_worker.sh`)
whose OpenAI SDK talks to the fake LLM server and whose search and pages are the fake web's, the
API under gunicorn, a fake SMTP server and a fake webhook receiver.

A company's first report, then a weekly watch through the API; the schedule is driven by sending
the beat's own task (`worker.watch_tasks.tick`) with a test clock's `now` to the real worker. Between
the first two runs the web changes (a new Series B article, the team page's head count 45 → 60):
exactly one re-run in that period, a changes view that names the new round and the new head count
with their sources, and one e-mail and one signed webhook. The next period nothing changed on the
web: the re-run happens, its change is not material, and nothing more is sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import requests
from celery import Celery
from sqlalchemy import func, select

from config import Settings
from tests.conftest import AUTH, Process, RedisServer, follow_job, provider_env, submit_report, wait_for
from tests.fakes import search_server
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.search_server import FakeSearchServer, days_ago
from tests.fakes.smtp_server import FakeSMTPServer
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.test_watches_e2e import ticks_done
from tests.test_alerts import set_user
from tests.test_watches import company_row, watch_jobs
from worker.alerts import SIGNATURE_HEADER
from worker.celery_setup import WATCH_TICK_TASK_NAME, create_celery
from worker.models import Delivery, Notification
from worker.store import JobStore

pytestmark = pytest.mark.integration

STARTUP = "Acme Robotics"
SECRET = "follow-e2e-webhook-secret"
ADMIN_EMAIL = "analyst@acme-watchers.example"
NEW_ROUND_PATH = "/articles/acme-series-b"
TEAM_PATH = "/articles/acme-team"
NEW_ROUND_ARTICLE = (
    "Acme Robotics raises $30M Series B",
    days_ago(3),
    [
        "Acme Robotics has raised a $30 million Series B round led by Northwind Capital, the warehouse "
        "robotics startup said on Monday.",
        "The company will use the money to open a factory in Rotterdam and to double its sales team, "
        "chief executive Jane Doe said in an interview.",
    ],
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def web_after_a_week(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake web a week later: a new funding-round article (first in every search's results,
    as a fresh article is) and the team page's head count up from 45 to 60."""
    title, published, paragraphs = search_server.ARTICLES[TEAM_PATH]
    grown = [paragraphs[0].replace("employs 45 people", "employs 60 people"), *paragraphs[1:]]
    assert grown != paragraphs
    articles = {NEW_ROUND_PATH: NEW_ROUND_ARTICLE, **search_server.ARTICLES, TEAM_PATH: (title, published, grown)}
    monkeypatch.setattr(search_server, "ARTICLES", articles)


def figure(changes: dict, name: str) -> dict:
    (found,) = [f for f in changes["figures"] if f["name"] == name]
    return found


def figure_row(page: str, name: str) -> str:
    """The changes view's table row of one key figure."""
    match = re.search(rf'<tr>\s*<th scope="row">{re.escape(name)}</th>(.*?)</tr>', page, re.DOTALL)
    assert match, f"no row for {name} in the changes view"
    return match.group(1)


def test_following_a_company_weekly(
    settings: Settings,
    start_worker: Callable[..., Process],
    api_server: str,
    web: FakeSearchServer,
    fake_llm: FakeLLMServer,
    smtp: FakeSMTPServer,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    clean_redis: RedisServer,
) -> None:
    worker = start_worker(
        OFFLINE_STEP_DELAY="0",
        SEARCH_BACKEND="searxng",
        SEARXNG_URL=web.url,
        FETCH_ALLOW_PRIVATE="true",  # the fake web, SMTP server and receiver are on 127.0.0.1
        FETCH_TIMEOUT="5",
        LLM_TIMEOUT="10",
        SMTP_URL=smtp.url,
        WEBHOOK_URL=f"{receiver.url}/deployment",
        WEBHOOK_SECRET=SECRET,
        PUBLIC_URL="https://reports.example.com",
        DELIVERY_BACKOFF_BASE="0.2",
        **provider_env(fake_llm, "openai"),
    )
    store = JobStore(settings.database_url)
    set_user(store, "admin", email=ADMIN_EMAIL)  # as the account page saves it
    celery = create_celery(settings)

    def tick(now: datetime) -> list[str]:
        """One tick of the schedule at `now`, run by the worker as beat's would be; the ids of
        the watch jobs that exist afterwards."""
        done = ticks_done(worker)
        celery.send_task(WATCH_TICK_TASK_NAME, kwargs={"now": now.isoformat()})
        wait_for(lambda: ticks_done(worker) > done, 20, "the worker to run the tick")
        return [job.id for job in watch_jobs(store)]

    def rerun_of(job_id: str) -> dict:
        final, _ = follow_job(api_server, job_id, timeout=60)
        assert final["state"] == "SUCCESS", final
        return final

    # The first report, and a weekly watch of its company through the API.
    first, _ = follow_job(api_server, submit_report(api_server, STARTUP), timeout=60)
    assert first["state"] == "SUCCESS", first
    assert fake_llm.successes(), "written through the OpenAI SDK by the fake LLM server"
    response = requests.post(
        f"{api_server}/api/watches", json={"report_id": first["job_id"], "every": "weekly"}, headers=AUTH, timeout=5
    )
    assert response.status_code == 201, response.text
    watch = response.json()
    company_id = watch["company"]["id"]
    due = datetime.fromisoformat(watch["next_run"])
    assert due == datetime.fromisoformat(first["finished_at"]) + timedelta(days=7)

    web_after_a_week(monkeypatch)

    # Period one: due after a week; a tick just before queues nothing, the first after one re-run.
    assert tick(due - timedelta(minutes=1)) == []
    (second_id,) = tick(due + timedelta(seconds=1))
    assert tick(due + timedelta(seconds=2)) == [second_id]  # the re-run still runs
    second = rerun_of(second_id)
    assert tick(due + timedelta(days=3)) == [second_id]  # finished, and still this period: nothing
    assert company_row(store, company_id).next_run_at == due + timedelta(days=7)
    rerun = store.get_job(second_id)
    assert (rerun.trigger, rerun.previous_job_id, rerun.created_by) == ("watch", first["job_id"], "admin")
    assert second["company_url"] == first["company_url"]

    # What changed, as JSON: the new round and the head count, each cited by its page.
    changes = requests.get(f"{api_server}/api/reports/{second_id}/changes", headers=AUTH, timeout=5).json()
    assert changes["previous_job_id"] == first["job_id"] and changes["material"] is True
    head_count = figure(changes, "Head count")
    assert (head_count["before"], head_count["after"]) == ("45 people", "60 people")
    assert [s["url"] for s in head_count["before_sources"]] == [f"{web.url}{TEAM_PATH}"]
    assert [s["url"] for s in head_count["after_sources"]] == [f"{web.url}{TEAM_PATH}"]
    last_round = figure(changes, "Last round")
    assert (last_round["before"], last_round["after"]) == ("$12M Series A", "$30M Series B")
    assert [s["url"] for s in last_round["after_sources"]] == [f"{web.url}{NEW_ROUND_PATH}"]
    assert "Head count: 45 people → 60 people" in changes["reasons"]
    assert "New funding round: $30M Series B" in changes["reasons"]
    assert f"{web.url}{NEW_ROUND_PATH}" in [s["url"] for s in changes["new_sources"]]

    # The report page's changes view says the same, with the sources linked.
    page = requests.get(f"{api_server}/reports/{second_id}", headers=AUTH, timeout=5)
    assert page.status_code == 200
    view = page.text.split('<section class="changes"', 1)[1].split("</section>", 1)[0]
    assert "Changes since" in view and "Material change" in view
    assert "New funding round: $30M Series B" in view
    row = figure_row(view, "Head count")
    assert "45 people" in row and "60 people" in row and f'href="{web.url}{TEAM_PATH}"' in row
    row = figure_row(view, "Last round")
    assert "$30M Series B" in row and f'href="{web.url}{NEW_ROUND_PATH}"' in row

    # Told once: one e-mail, one webhook whose signature verifies over the raw body.
    wait_for(lambda: len(smtp.messages) >= 1 and len(receiver.received()) >= 1, 20, "the e-mail and the webhook")
    (message,) = smtp.messages
    assert message["To"] == ADMIN_EMAIL and STARTUP in message["Subject"]
    assert "Head count: 45 people → 60 people" in message.get_payload(decode=True).decode()
    (hook,) = receiver.received()
    assert hook.path == "/deployment"
    expected = "sha256=" + hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(hook.headers[SIGNATURE_HEADER], expected)
    payload = json.loads(hook.body)
    assert payload["job_id"] == second_id and "New funding round: $30M Series B" in payload["reasons"]
    assert payload["links"]["report"] == f"https://reports.example.com/reports/{second_id}"

    # Period two, nothing changed on the web: a re-run, not material, nothing more sent.
    next_due = due + timedelta(days=7)
    third_id = tick(next_due + timedelta(seconds=1))[-1]
    assert third_id != second_id and len(watch_jobs(store)) == 2
    rerun_of(third_id)
    assert store.get_job(third_id).previous_job_id == second_id
    unchanged = requests.get(f"{api_server}/api/reports/{third_id}/changes", headers=AUTH, timeout=5).json()
    assert (unchanged["material"], unchanged["figures"], unchanged["reasons"]) == (False, [], [])
    wait_for(lambda: idle(celery, clean_redis), 20, "the worker to finish its tasks")
    assert len(smtp.messages) == 1 and len(receiver.received()) == 1
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
    store.dispose()


def idle(celery: Celery, redis_server: RedisServer) -> bool:
    """Nothing running, held or queued for the worker: alerts, had there been any, would have come
    from the task that stored the report, and the deliveries it queues."""
    inspect = celery.control.inspect(timeout=1)
    replies = [inspect.active(), inspect.reserved(), inspect.scheduled()]
    if any(reply is None for reply in replies):  # the worker did not answer
        return False
    busy = any(tasks for reply in replies for tasks in reply.values())
    return not busy and redis_server.client().llen("celery") == 0
