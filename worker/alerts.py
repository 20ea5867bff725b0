"""Telling watchers that a company changed materially: on the dashboard, by e-mail and by webhook.

`alert_watchers` is called once a material `Change` is stored. It writes a `Notification` per
watcher (the dashboard's list) and a `Delivery` row per message to send (an e-mail to each watcher
with an address when SMTP_URL is set, each watcher's webhook, and the deployment's WEBHOOK_URL),
then queues one `worker.watch_tasks.deliver` task per delivery. `attempt_delivery` makes one try
and records it on the row; the task retries with exponential backoff (DELIVERY_* settings), so a
receiver that is down for an hour gets the message when it is back. Webhooks go out through the
same SSRF guard as fetched pages, and carry `X-Signature-256: sha256=<HMAC-SHA256 of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpcore2
import httpx2
from sqlalchemy import exists, func, select, update

from worker.models import Change, Delivery, Notification, User, Watch, utcnow
from worker.sources.ssrf import AddressPolicy, AddressRefused, GuardedBackend, GuardedTransport, check_scheme
from worker.store import JobStore

if TYPE_CHECKING:
    from celery import Celery

    from config import Settings

logger = logging.getLogger(__name__)

EMAIL, WEBHOOK = "email", "webhook"
PENDING, SENT, FAILED = "pending", "sent", "failed"
WEBHOOK_FORMATS = ("json", "slack")
SIGNATURE_HEADER = "X-Signature-256"
USER_AGENT = "StartupReports-Webhook/1.0"


class DeliveryError(Exception):
    """One attempt failed. `retryable` False: trying again cannot help (an address the guard
    refuses, a receiver that refuses the request itself, SMTP credentials refused)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# Who is told, and where.


def create_alerts(store: JobStore, settings: Settings, change_id: int) -> list[int]:
    """The notifications and delivery rows for a material change; returns the deliveries' ids.
    Nothing for a change that is not material, and nothing twice: a change already alerted about
    (a repeated call) gets no new rows."""
    with store.session() as session:
        change = session.get(Change, change_id)
        if change is None or not change.material:
            return []
        done = exists().where(Notification.change_id == change_id) | exists().where(Delivery.change_id == change_id)
        if session.scalar(select(done)):
            return []
        query = (
            select(User)
            .join(Watch, Watch.user_id == User.id)
            .where(Watch.company_id == change.company_id, Watch.every_seconds > 0)
            .order_by(User.id)
        )
        deliveries = []
        for user in session.scalars(query):
            session.add(Notification(user_id=user.id, change_id=change_id))
            if settings.smtp_url and user.email:
                deliveries.append(Delivery(change_id=change_id, user_id=user.id, channel=EMAIL, target=user.email))
            if user.webhook_url:
                deliveries.append(
                    Delivery(change_id=change_id, user_id=user.id, channel=WEBHOOK, target=user.webhook_url)
                )
        if settings.webhook_url:
            deliveries.append(Delivery(change_id=change_id, user_id=None, channel=WEBHOOK, target=settings.webhook_url))
        for delivery in deliveries:
            delivery.state, delivery.attempts = PENDING, 0
            session.add(delivery)
        session.flush()
        return [delivery.id for delivery in deliveries]


def alert_watchers(app: Any, change_id: int) -> list[int]:
    """Tell the company's watchers about a stored change, if it is material: the rows at once, and
    a Celery task per delivery. `app` is the worker's Celery app (`ReportsCelery`) or the Flask
    app. Returns the deliveries' ids. A delivery whose task could not be queued (Redis away) stays
    pending, with the reason as its last error."""
    store, settings, celery = _parts(app)
    delivery_ids = create_alerts(store, settings, change_id)
    for delivery_id in delivery_ids:
        queue_delivery(store, celery, delivery_id)
    return delivery_ids


def queue_delivery(store: JobStore, celery: Celery, delivery_id: int) -> None:
    from worker.celery_setup import DELIVER_TASK_NAME

    try:
        celery.send_task(DELIVER_TASK_NAME, args=[delivery_id])
    except Exception as exc:
        logger.warning("could not queue delivery %s: %s", delivery_id, exc)
        with store.session() as session:
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(last_error=f"not queued: {exc}"))


def _parts(app: Any) -> tuple[JobStore, Settings, Celery]:
    extensions = getattr(app, "extensions", None)
    if isinstance(extensions, dict) and "jobs" in extensions:  # the Flask app
        service = extensions["jobs"]
        return service.store, extensions["settings"], service.celery
    return app.job_store, app.settings, app


# What is sent.


def change_links(summary: dict[str, Any], settings: Settings) -> dict[str, str]:
    base = settings.public_link
    links = {"notifications": f"{base}/notifications"}
    if summary.get("job_id"):
        links["report"] = f"{base}/reports/{summary['job_id']}"
        links["changes"] = f"{base}/api/reports/{summary['job_id']}/changes"
    if summary.get("previous_job_id"):
        links["previous_report"] = f"{base}/reports/{summary['previous_job_id']}"
    company_id = (summary.get("company") or {}).get("id")
    if company_id is not None:
        links["company"] = f"{base}/companies/{company_id}"
    return links


def webhook_payload(change: Change, settings: Settings) -> dict[str, Any]:
    """The JSON a webhook receives: the change's summary as stored, its id, and absolute links."""
    summary = json.loads(change.summary)
    return {
        "event": "company.changed",
        "change_id": change.id,
        **summary,
        "links": change_links(summary, settings),
    }


def headline(summary: dict[str, Any]) -> str:
    name = (summary.get("company") or {}).get("name") or "A company you watch"
    since = summary.get("since")
    return f"{name} changed since {since}" if since else f"{name} changed"


def slack_payload(payload: dict[str, Any]) -> dict[str, str]:
    """A Slack-compatible incoming-webhook body: one `text` in Slack's mrkdwn."""
    lines = [f"*{headline(payload)}*"]
    lines += [f"• {reason}" for reason in payload.get("reasons") or []]
    links = payload["links"]
    if "report" in links:
        lines.append(f"<{links['report']}|Read the new report>")
    return {"text": "\n".join(lines)}


def sign(body: bytes, secret: str) -> str:
    """The `X-Signature-256` value: sha256=<hex HMAC-SHA256 of the body under WEBHOOK_SECRET>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def email_message(payload: dict[str, Any], to: str, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = headline(payload)
    message["From"] = sender
    message["To"] = to
    lines = [headline(payload) + ".", ""]
    lines += [f"- {reason}" for reason in payload.get("reasons") or []]
    links = payload["links"]
    lines += ["", *(f"{name.replace('_', ' ').capitalize()}: {url}" for name, url in links.items() if "api" not in url)]
    lines += ["", "You receive this because you watch this company on Startup Reports."]
    message.set_content("\n".join(lines))
    return message


# Sending.


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps://: TLS from the start
    starttls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpServer:
    """smtp://[user:password@]host[:port][?starttls=true], or smtps://… (port 465 by default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:password@host:587?starttls=true or smtps://host:465")
    query = {key.lower(): values[-1].lower() for key, values in parse_qs(parts.query).items()}
    tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        tls=tls,
        starttls=query.get("starttls") in ("1", "true", "yes", "on"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def send_email(message: EmailMessage, smtp_url: str, timeout: float) -> None:
    server = parse_smtp_url(smtp_url)
    try:
        if server.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            if server.starttls:
                client.starttls(context=ssl.create_default_context())
            if server.username:
                client.login(server.username, server.password or "")
            client.send_message(message)
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise DeliveryError(f"the mail server refused the message: {exc}", retryable=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"the mail server could not be reached or failed: {exc or type(exc).__name__}") from None


def webhook_client(settings: Settings) -> httpx2.Client:
    """A client that connects only where fetched pages may (FETCH_ALLOW_PRIVATE), follows no
    redirect (a redirect could lead past the check of the URL the user saved) and uses no proxy."""
    policy = AddressPolicy(allow_private=settings.fetch_allow_private)
    return httpx2.Client(
        transport=GuardedTransport(policy, max_connections=2),
        timeout=settings.fetch_timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


def send_webhook(url: str, body: bytes, settings: Settings) -> None:
    headers = {"Content-Type": "application/json"}
    if settings.webhook_secret:
        headers[SIGNATURE_HEADER] = sign(body, settings.webhook_secret.get_secret_value())
    try:
        check_scheme(url)
        with webhook_client(settings) as client:
            response = client.post(url, content=body, headers=headers)
    except AddressRefused as exc:
        raise DeliveryError(f"refused: {exc}", retryable=False) from None
    except httpx2.TimeoutException:
        raise DeliveryError(f"no answer within {settings.fetch_timeout:g} s") from None
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise DeliveryError(f"could not be reached: {exc or type(exc).__name__}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    # The receiver down or busy is worth waiting for; one that refuses the request itself is not.
    retryable = status >= 500 or status in (408, 425, 429)
    raise DeliveryError(f"the receiver answered {status}", retryable=retryable)


def validate_webhook_url(url: str, *, allow_private: bool) -> str:
    """A webhook URL as the account page saves it, or ValueError saying why not: http(s) only,
    and a host whose every address the SSRF guard allows now (send time checks again)."""
    url = url.strip()
    try:
        check_scheme(url)
        parsed = httpx2.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        GuardedBackend(AddressPolicy(allow_private=allow_private)).vetted_addresses(parsed.host, port)
    except AddressRefused as exc:
        raise ValueError(f"This webhook URL cannot be used: {exc} (only public addresses are allowed).") from None
    except (httpx2.InvalidURL, httpcore2.ConnectError) as exc:
        raise ValueError(f"This webhook URL cannot be used: {exc}.") from None
    return url


# One attempt, recorded.


@dataclass(frozen=True)
class Attempt:
    """What one try of a delivery came to: "sent", "retry" (try again after `attempts`), "failed"
    (given up), or "skipped" (sent or given up already, or another copy of the task is trying)."""

    outcome: str
    attempts: int = 0
    error: str | None = None


def attempt_delivery(store: JobStore, settings: Settings, delivery_id: int, *, now: datetime | None = None) -> Attempt:
    """Try a pending delivery once and record the attempt on its row. The attempt is claimed by
    compare-and-set on the attempt count, so a task delivered twice (Redis re-delivers an
    unacknowledged one) does not send the message twice at the same time."""
    with store.session() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.state != PENDING:
            return Attempt("skipped")
        seen = delivery.attempts
        claimed = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == PENDING, Delivery.attempts == seen)
            .values(attempts=seen + 1, last_attempt_at=now or utcnow())
        ).rowcount
        if not claimed:
            return Attempt("skipped")
        change = session.get(Change, delivery.change_id)
        user = session.get(User, delivery.user_id) if delivery.user_id is not None else None
        channel, target = delivery.channel, delivery.target
    attempts = seen + 1
    try:
        _send(channel, target, change, user, settings)
    except DeliveryError as exc:
        give_up = not exc.retryable or attempts >= settings.delivery_max_attempts
        state = FAILED if give_up else PENDING
        _record(store, delivery_id, state=state, last_error=str(exc)[:2000])
        logger.info("delivery %s (%s to %s), attempt %d: %s", delivery_id, channel, target, attempts, exc)
        return Attempt(FAILED if give_up else "retry", attempts, str(exc))
    _record(store, delivery_id, state=SENT, sent_at=utcnow(), last_error=None)
    logger.info("delivery %s (%s to %s) sent at attempt %d", delivery_id, channel, target, attempts)
    return Attempt(SENT, attempts)


def _send(channel: str, target: str, change: Change | None, user: User | None, settings: Settings) -> None:
    if change is None:
        raise DeliveryError("the change no longer exists", retryable=False)
    payload = webhook_payload(change, settings)
    if channel == EMAIL:
        if not settings.smtp_url:
            raise DeliveryError("SMTP_URL is not set any more", retryable=False)
        message = email_message(payload, target, settings.mail_from)
        send_email(message, settings.smtp_url.get_secret_value(), settings.fetch_timeout)
        return
    slack = user is not None and user.webhook_format == "slack"
    body = json.dumps(slack_payload(payload) if slack else payload, ensure_ascii=False).encode()
    send_webhook(target, body, settings)


def _record(store: JobStore, delivery_id: int, **values: object) -> None:
    with store.session() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the attempt after `attempts`: DELIVERY_BACKOFF_BASE doubled each time, at
    most DELIVERY_BACKOFF_MAX (the defaults wait some 66 minutes over 12 attempts)."""
    return min(settings.delivery_backoff_base * 2 ** max(0, attempts - 1), settings.delivery_backoff_max)


def deliveries_of(store: JobStore, company_id: int, limit: int = 50) -> list[tuple[Delivery, Change]]:
    """A company's deliveries, the newest first, with their changes (the company page lists them)."""
    with store.session() as session:
        query = (
            select(Delivery, Change)
            .join(Change, Change.id == Delivery.change_id)
            .where(Change.company_id == company_id)
            .order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .limit(limit)
        )
        return [(delivery, change) for delivery, change in session.execute(query)]


# The dashboard's side: a watcher's notifications and where they want to be told.


@dataclass(frozen=True)
class NotificationEntry:
    notification: Notification
    change: Change
    summary: dict[str, Any]


def notifications_of(store: JobStore, user_id: int, limit: int = 100) -> list[NotificationEntry]:
    """A user's notifications, the newest first, with the changes they are about."""
    with store.session() as session:
        query = (
            select(Notification, Change)
            .join(Change, Change.id == Notification.change_id)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
        return [NotificationEntry(n, c, json.loads(c.summary)) for n, c in session.execute(query)]


def unread_count(store: JobStore, user_id: int) -> int:
    with store.session() as session:
        query = select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        return session.scalar(query) or 0


def mark_read(store: JobStore, user_id: int, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read, or all of them; returns how many changed."""
    with store.session() as session:
        query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        if notification_id is not None:
            query = query.where(Notification.id == notification_id)
        return session.execute(query.values(read_at=utcnow())).rowcount


def alert_settings(store: JobStore, user_id: int) -> User | None:
    with store.session() as session:
        return session.get(User, user_id)


def save_alert_settings(
    store: JobStore, user_id: int, *, email: str | None, webhook_url: str | None, webhook_format: str
) -> None:
    """Where the user is told; the caller has validated the values (the webhook URL by
    `validate_webhook_url`)."""
    with store.session() as session:
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(email=email, webhook_url=webhook_url, webhook_format=webhook_format)
        )
