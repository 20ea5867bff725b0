"""Being told: notifications, e-mail through a fake SMTP server (aiosmtpd) and webhooks to a fake
receiver that is down for its first deliveries; every attempt recorded; nothing for a change that
is not material; the SSRF guard at save time and at send time; the dashboard's side."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from config import Settings
from tests.conftest import ADMIN_PASSWORD, API_TOKEN, log_in, make_settings, store_of
from tests.fakes.smtp_server import FakeSMTPServer
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.test_watches import T0, add_version, client_for, make_company
from worker.alerts import (
    SIGNATURE_HEADER,
    Attempt,
    attempt_delivery,
    backoff,
    create_alerts,
    parse_smtp_url,
    validate_webhook_url,
)
from worker.models import Change, Delivery, Notification, User
from worker.store import JobStore

SECRET = "webhook-test-secret"


def summary(company_id: int, job_id: str, previous_job_id: str, material: bool = True) -> dict[str, object]:
    """A change's summary as the versions code writes it."""
    return {
        "company": {"id": company_id, "name": "Acme Robotics", "website": "https://acme.example"},
        "job_id": job_id,
        "previous_job_id": previous_job_id,
        "since": "2026-01-05",
        "sections": [{"key": "traction", "title": "Traction signals", "added": 2, "removed": 1}],
        "figures": [{"name": "Head count", "before": "40", "after": "55", "source": "https://acme.example/about"}],
        "new_sources": [{"title": "Acme raises $20M Series A", "url": "https://news.example/acme-a"}],
        "new_news": [{"title": "Acme raises $20M Series A", "url": "https://news.example/acme-a"}],
        "material": material,
        "reasons": ["Head count: 40 → 55", "New funding round: Series A, $20M"] if material else [],
    }


def store_change(store: JobStore, company_id: int, *, material: bool = True) -> int:
    previous = add_version(store, company_id, T0)
    new = add_version(store, company_id, T0 + timedelta(days=7))
    with store.session() as session:
        change = Change(
            company_id=company_id,
            job_id=new,
            previous_job_id=previous,
            material=material,
            summary=json.dumps(summary(company_id, new, previous, material)),
        )
        session.add(change)
        session.flush()
        return change.id


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Down (500) for its first two requests, then accepting."""
    server = WebhookReceiver(fail_first=2).start()
    yield server
    server.stop()


@pytest.fixture
def alert_settings(settings: Settings, smtp: FakeSMTPServer, receiver: WebhookReceiver) -> Settings:
    return make_settings(
        **{name: getattr(settings, name) for name in ("redis_url", "database_url", "data_dir", "llm_provider")},
        admin_password=ADMIN_PASSWORD,
        api_token=API_TOKEN,
        smtp_url=smtp.url,
        webhook_url=f"{receiver.url}/deployment",
        webhook_secret=SECRET,
        public_url="https://reports.example.com/",
        fetch_allow_private=True,  # the fake receiver listens on 127.0.0.1
    )


@pytest.fixture
def alert_app(alert_settings: Settings) -> Iterator[Flask]:
    from webapp import create_app

    app = create_app(alert_settings)
    yield app
    app.extensions["jobs"].workers.stop()


def set_user(store: JobStore, username: str, **values: object) -> None:
    with store.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        for key, value in values.items():
            setattr(user, key, value)


def watched_change(app: Flask, receiver: WebhookReceiver, *, material: bool = True) -> int:
    """admin (e-mail and a JSON webhook) and alice (a Slack webhook) watch a company that changed;
    bob watches it with re-runs off."""
    store = store_of(app)
    company_id = make_company(store)
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    admin.post("/api/watches", json={"company_id": company_id, "every": "weekly"})
    client_for(app, "alice").post("/api/watches", json={"company_id": company_id, "every": "daily"})
    client_for(app, "bob").post("/api/watches", json={"company_id": company_id, "every": "off"})
    set_user(store, "admin", email="admin@acme.example", webhook_url=f"{receiver.url}/admin")
    set_user(store, "alice", webhook_url=f"{receiver.url}/alice", webhook_format="slack")
    set_user(store, "bob", email="bob@acme.example")
    return store_change(store, company_id, material=material)


def deliveries(store: JobStore) -> dict[str, Delivery]:
    with store.session() as session:
        return {f"{d.channel}:{d.target.rsplit('/', 1)[-1]}": d for d in session.scalars(select(Delivery))}


def deliver_all(store: JobStore, settings: Settings, delivery_ids: list[int]) -> list[Attempt]:
    """What the deliver tasks do, without Celery's countdown: try each until it is not retried."""
    attempts = []
    for delivery_id in delivery_ids:
        while True:
            attempt = attempt_delivery(store, settings, delivery_id)
            attempts.append(attempt)
            if attempt.outcome != "retry":
                break
    return attempts


def verify(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_a_material_change_reaches_every_watcher_once(
    alert_app: Flask, alert_settings: Settings, smtp: FakeSMTPServer, receiver: WebhookReceiver
) -> None:
    store = store_of(alert_app)
    change_id = watched_change(alert_app, receiver)
    delivery_ids = create_alerts(store, alert_settings, change_id)
    rows = deliveries(store)
    assert sorted(rows) == ["email:admin@acme.example", "webhook:admin", "webhook:alice", "webhook:deployment"]
    assert rows["webhook:deployment"].user_id is None
    with store.session() as session:  # bob's watch is off: not told
        assert len(list(session.scalars(select(Notification)))) == 2

    deliver_all(store, alert_settings, delivery_ids)
    rows = deliveries(store)
    assert {key: row.state for key, row in rows.items()} == dict.fromkeys(rows, "sent")
    # The receiver was down for the first two attempts, which the first webhook took.
    assert sum(row.attempts for row in rows.values()) == 4 + 2
    assert sorted(row.attempts for row in rows.values()) == [1, 1, 1, 3]
    retried = next(row for row in rows.values() if row.attempts == 3)
    assert retried.last_error is None and retried.sent_at is not None and retried.last_attempt_at is not None

    # One accepted message per webhook, each signed.
    for path in ("/admin", "/alice", "/deployment"):
        accepted = receiver.accepted(path)
        assert len(accepted) == 1, path
        assert verify(accepted[0].body, accepted[0].headers[SIGNATURE_HEADER])
    payload = json.loads(receiver.accepted("/deployment")[0].body)
    assert payload["event"] == "company.changed" and payload["change_id"] == change_id
    assert payload["reasons"] == ["Head count: 40 → 55", "New funding round: Series A, $20M"]
    assert payload["figures"][0]["after"] == "55"
    assert payload["links"]["report"] == f"https://reports.example.com/reports/{payload['job_id']}"
    assert payload["links"]["company"] == f"https://reports.example.com/companies/{payload['company']['id']}"
    slack = json.loads(receiver.accepted("/alice")[0].body)
    assert list(slack) == ["text"] and "*Acme Robotics changed since 2026-01-05*" in slack["text"]
    assert "• Head count: 40 → 55" in slack["text"] and "|Read the new report>" in slack["text"]

    # One e-mail, to the one watcher with an address.
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["To"] == "admin@acme.example" and mail["Subject"] == "Acme Robotics changed since 2026-01-05"
    text = mail.get_payload(decode=True).decode()
    assert "- Head count: 40 → 55" in text and "https://reports.example.com/reports/" in text

    # Telling again about the same change sends nothing more.
    assert create_alerts(store, alert_settings, change_id) == []


def test_nothing_is_sent_when_the_change_is_not_material(
    alert_app: Flask, alert_settings: Settings, smtp: FakeSMTPServer, receiver: WebhookReceiver
) -> None:
    store = store_of(alert_app)
    change_id = watched_change(alert_app, receiver, material=False)
    assert create_alerts(store, alert_settings, change_id) == []
    with store.session() as session:
        assert session.scalar(select(Notification.id)) is None and session.scalar(select(Delivery.id)) is None
    assert receiver.requests == [] and smtp.messages == []


def test_a_receiver_that_stays_down_is_given_up_after_the_last_attempt(
    alert_app: Flask, alert_settings: Settings, receiver: WebhookReceiver
) -> None:
    store = store_of(alert_app)
    receiver.fail_first = 100
    change_id = watched_change(alert_app, receiver)
    create_alerts(store, alert_settings, change_id)
    few = alert_settings.model_copy(update={"delivery_max_attempts": 3})
    ids = [d.id for d in deliveries(store).values() if d.target.endswith("/deployment")]
    attempts = deliver_all(store, few, ids)
    assert [a.outcome for a in attempts] == ["retry", "retry", "failed"]
    row = deliveries(store)["webhook:deployment"]
    assert (row.state, row.attempts, row.last_error) == ("failed", 3, "the receiver answered 500")
    assert attempt_delivery(store, few, ids[0]).outcome == "skipped"  # a late copy of the task does nothing


def test_the_ssrf_guard_refuses_a_private_webhook_at_send_time(
    alert_app: Flask, alert_settings: Settings, receiver: WebhookReceiver
) -> None:
    store = store_of(alert_app)
    change_id = watched_change(alert_app, receiver)
    create_alerts(store, alert_settings, change_id)
    guarded = alert_settings.model_copy(update={"fetch_allow_private": False})
    row = deliveries(store)["webhook:deployment"]
    attempt = attempt_delivery(store, guarded, row.id)
    assert attempt.outcome == "failed"  # no retry can help
    row = deliveries(store)["webhook:deployment"]
    assert row.state == "failed" and row.attempts == 1 and "127.0.0.1 is not a public address" in row.last_error
    assert receiver.requests == []


def test_backoff_doubles_up_to_its_cap(alert_settings: Settings) -> None:
    assert [backoff(n, alert_settings) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert backoff(12, alert_settings) == 900
    defaults = make_settings()
    waited = sum(backoff(n, defaults) for n in range(1, defaults.delivery_max_attempts))
    assert 3600 < waited < 5400  # a receiver down for an hour still gets the message


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mailer:p%40ss@mail.example:587?starttls=true")
    assert (plain.host, plain.port, plain.tls, plain.starttls, plain.username, plain.password) == (
        "mail.example",
        587,
        False,
        True,
        "mailer",
        "p@ss",
    )
    tls = parse_smtp_url("smtps://mail.example")
    assert (tls.port, tls.tls, tls.starttls, tls.username) == (465, True, False, None)
    with pytest.raises(ValueError, match="SMTP_URL"):
        parse_smtp_url("http://mail.example")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:9/hook", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://[::1]/hook", "not a public address"),
        ("ftp://93.184.216.34/hook", "only http and https"),
        ("hooks.example.com/x", "only http and https"),
    ],
)
def test_webhook_urls_are_checked_when_saved(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        validate_webhook_url(url, allow_private=False)
    assert validate_webhook_url("http://93.184.216.34/hook", allow_private=False) == "http://93.184.216.34/hook"
    assert validate_webhook_url("http://127.0.0.1:9/hook", allow_private=True) == "http://127.0.0.1:9/hook"


# The dashboard's side.


def test_the_account_page_saves_where_the_user_is_told(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    page = client.get("/account").get_data(as_text=True)
    assert 'action="/account/alerts"' in page

    refused = client.post(
        "/account/alerts", data={"email": "admin@acme.example", "webhook_url": "http://10.0.0.5/hook"}
    )
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "10.0.0.5 is not a public address" in text and 'value="http://10.0.0.5/hook"' in text
    bad_mail = client.post("/account/alerts", data={"email": "not-an-address"})
    assert bad_mail.status_code == 400 and "does not look like one" in bad_mail.get_data(as_text=True)
    bad_format = client.post("/account/alerts", data={"webhook_format": "xml"})
    assert bad_format.status_code == 400

    saved = client.post(
        "/account/alerts",
        data={"email": " admin@acme.example ", "webhook_url": "https://93.184.216.34/hook", "webhook_format": "slack"},
    )
    assert saved.status_code == 303
    with store_of(app).session() as session:
        user = session.scalar(select(User).where(User.username == "admin"))
        assert (user.email, user.webhook_url, user.webhook_format) == (
            "admin@acme.example",
            "https://93.184.216.34/hook",
            "slack",
        )
    assert 'value="https://93.184.216.34/hook"' in client.get("/account").get_data(as_text=True)

    del client.environ_base["HTTP_X_CSRFTOKEN"]
    assert client.post("/account/alerts", data={"email": "x@y.example"}).status_code == 403


def test_notifications_are_counted_in_the_navbar_and_marked_read(
    alert_app: Flask, alert_settings: Settings, receiver: WebhookReceiver
) -> None:
    store = store_of(alert_app)
    change_id = watched_change(alert_app, receiver)
    create_alerts(store, alert_settings, change_id)
    client = alert_app.test_client()
    log_in(client)
    home = client.get("/watches").get_data(as_text=True)
    assert 'aria-label="1 unread"' in home
    page = client.get("/notifications").get_data(as_text=True)
    assert "Acme Robotics changed since 2026-01-05" in page and "Head count: 40 → 55" in page
    notification_id = int(page.split('name="id" value="')[1].split('"')[0])
    assert client.post("/notifications/read", data={"id": notification_id}).status_code == 303
    assert "unread" not in client.get("/notifications").get_data(as_text=True)


def test_delivery_attempts_are_visible_as_json_and_on_a_company_page(
    alert_app: Flask, alert_settings: Settings, receiver: WebhookReceiver
) -> None:
    store = store_of(alert_app)
    change_id = watched_change(alert_app, receiver)
    ids = create_alerts(store, alert_settings, change_id)
    deliver_all(store, alert_settings, ids[:1])
    with store.session() as session:
        company_id = session.get(Change, change_id).company_id

    alice = client_for(alert_app, "alice")
    listed = alice.get(f"/api/companies/{company_id}/deliveries").json["deliveries"]
    assert len(listed) == 4
    by_to = {(d["channel"], d["target"]) for d in listed}
    # alice sees her own webhook and that others were sent, not their addresses.
    assert ("webhook", f"{receiver.url}/alice") in by_to and ("email", None) in by_to
    assert alice.get("/api/companies/999/deliveries").status_code == 404

    # The partial the company page includes.
    with alert_app.test_request_context():
        from flask import render_template
        from flask_login import login_user

        from webapp.accounts import Analyst

        admin_id = alert_app.extensions["accounts"].by_name("admin").id
        login_user(Analyst(admin_id, "admin"))
        html = render_template("companies/_deliveries.html", company_id=company_id)
    assert "Alerts sent" in html and "admin@acme.example" in html and "attempt" in html
