"""Keeping strangers out: sessions, tokens, CSRF, headers, limits, and the account commands."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, event, update

from config import Settings
from tests.conftest import ADMIN_PASSWORD, AUTH, RedisServer, csrf_token_of, log_in
from webapp import create_app
from webapp.accounts import Accounts
from worker.models import ApiToken, User, utcnow

HTML = {"Accept": "text/html"}


def accounts(app: Flask) -> Accounts:
    return app.extensions["accounts"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/generate"), ("get", "/status/x"), ("get", "/api/jobs"), ("get", "/reports/x.md")],
)
def test_the_api_answers_401_json_without_a_token(app: Flask, method: str, path: str) -> None:
    response = getattr(app.test_client(), method)(path, json={"startup": "Acme"})
    assert response.status_code == 401 and response.is_json
    assert "Bearer" in response.get_json()["error"]
    bad = getattr(app.test_client(), method)(path, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_pages_redirect_to_the_login_page_and_back(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/reports?q=acme", headers=HTML)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    assert client.get("/healthz").status_code == 200  # open, for load balancers
    token = csrf_token_of(client.get(response.headers["Location"]).get_data(as_text=True))
    assert 'name="next" value="/reports?q=acme"' in client.get(response.headers["Location"]).get_data(as_text=True)
    login = client.post(
        "/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token, "next": "/reports?q=acme"},
    )
    assert login.status_code == 303 and login.headers["Location"] == "/reports?q=acme"


def test_an_htmx_request_after_the_session_ended_is_sent_to_the_login_page(app: Flask) -> None:
    """htmx swaps no redirect into a card: a 401 with HX-Redirect makes it load the log-in page."""
    response = app.test_client().get("/jobs/some-job/card", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/login?next=/jobs/some-job/card"


def test_logging_out_and_changing_the_password(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    wrong = client.post("/account/password", data={"current": "not it", "new": "another long password"})
    assert "current password is wrong" in client.get(wrong.headers["Location"]).get_data(as_text=True)
    changed = client.post("/account/password", data={"current": ADMIN_PASSWORD, "new": "another long password"})
    assert "Password changed." in client.get(changed.headers["Location"]).get_data(as_text=True)
    assert client.post("/logout").headers["Location"] == "/login"
    assert client.get("/", headers=HTML).status_code == 302
    assert accounts(app).authenticate("admin", "another long password") is not None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_login_never_redirects_off_site(app: Flask, target: str) -> None:
    client = app.test_client()
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token, "next": target}
    )
    assert response.headers["Location"] == "/"


def test_wrong_passwords_are_refused(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    for username, password in (("admin", "wrong password"), ("nobody", ADMIN_PASSWORD)):
        response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert response.status_code == 401 and "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/", headers=HTML).status_code == 302


def test_forms_without_the_csrf_token_are_refused(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    for path, data in (("/jobs", {"startups": "Acme"}), ("/logout", {})):
        response = client.post(path, data=data, headers=HTML)
        assert response.status_code == 403 and "CSRF" in response.get_data(as_text=True)
    response = client.post("/jobs", data={"startups": "Acme", "csrf_token": "forged"}, headers=HTML)
    assert response.status_code == 403
    # The API on the session cookie needs it too, and says so in JSON.
    response = client.post("/generate", json={"startup": "Acme"})
    assert response.status_code == 403 and "CSRF check failed" in response.get_json()["error"]
    assert app.extensions["jobs"].store.recent_jobs(5) == []
    # The token from the page itself works.
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/jobs", data={"startups": "Acme", "csrf_token": token}).status_code == 303
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page


def test_login_itself_needs_the_csrf_token(app: Flask) -> None:
    response = app.test_client().post("/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 403


def test_security_headers_and_cookie_flags(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Strict-Transport-Security" not in response.headers


def test_behind_an_https_proxy_cookies_are_secure_and_forms_need_a_same_site_referrer(settings: Settings) -> None:
    settings.trust_proxy = True
    client = create_app(settings).test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "reports.example", "X-Forwarded-For": "203.0.113.9"}
    page = client.get("/login", headers=proxied)
    assert "Secure" in page.headers["Set-Cookie"] and page.headers["Strict-Transport-Security"]
    form = {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf_token_of(page.get_data(as_text=True))}
    # Over HTTPS Flask-WTF also wants the Referer of a page of this site (Referrer-Policy: same-origin sends it).
    assert client.post("/login", data=form, headers=proxied).status_code == 403
    elsewhere = {**proxied, "Referer": "https://evil.example/login"}
    assert client.post("/login", data=form, headers=elsewhere).status_code == 403
    same_site = {**proxied, "Referer": "https://reports.example/login"}
    assert client.post("/login", data=form, headers=same_site).status_code == 303


def test_the_page_has_no_inline_script(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    page = client.get("/").get_data(as_text=True)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert not re.search(r"\son[a-z]+\s*=", page), "no inline event handlers either"


def test_tokens_from_the_command_line_work_until_revoked(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "dana", "--password", "a long enough password"])
    assert result.exit_code == 0 and "Created user dana" in result.output
    assert runner.invoke(args=["create-user", "dana", "--password", "a long enough password"]).exit_code == 1
    assert "at least 10" in runner.invoke(args=["create-user", "eve", "--password", "short"]).output
    token = runner.invoke(args=["create-token", "dana", "--name", "nightly"]).output.strip()
    assert token.startswith("sr_") and len(token) > 40

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post("/generate", json={"startup": "Acme"}, headers=headers)
    assert response.status_code == 202
    job = app.extensions["jobs"].store.get_job(response.get_json()["job_id"])
    assert job.created_by == "dana"

    (stored,) = accounts(app).tokens_of(accounts(app).by_name("dana").id)
    assert token not in (stored.token_hash, stored.hint) and stored.last_used_at is not None
    accounts(app).revoke_token(stored.user_id, stored.id)
    assert client.get("/api/jobs", headers=headers).status_code == 401  # at once, not within a minute


def test_polling_with_a_token_reads_it_and_writes_its_last_use_once_a_minute(app: Flask) -> None:
    """A script polls /status several times a second: each poll reads the token and the job by
    index, and writes `last_used_at` only when the stored one is a minute old."""
    _, secret = accounts(app).create_token("admin", "poller")
    headers = {"Authorization": f"Bearer {secret}"}
    job = app.extensions["jobs"].store.create_job("Acme")
    client = app.test_client()
    assert client.get(f"/status/{job.id}", headers=headers).status_code == 200  # the first use is written
    statements: list[str] = []
    event.listen(app.extensions["jobs"].store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(3):
        assert client.get(f"/status/{job.id}", headers=headers).status_code == 200
    assert len(statements) == 6 and all(s.lstrip().upper().startswith("SELECT") for s in statements), statements
    with app.extensions["jobs"].store.session() as session:  # a minute later, the next poll writes it
        session.execute(update(ApiToken).values(last_used_at=utcnow() - timedelta(minutes=2)))
    statements.clear()
    assert client.get(f"/status/{job.id}", headers=headers).status_code == 200
    assert any(s.lstrip().upper().startswith("UPDATE API_TOKENS") for s in statements), statements
    (token,) = accounts(app).tokens_of(accounts(app).by_name("admin").id)
    assert utcnow() - token.last_used_at < timedelta(seconds=10)


def logged_in_clients(app: Flask, count: int) -> list[FlaskClient]:
    """Several browsers logged in as admin, each with a session of its own."""
    clients = [app.test_client() for _ in range(count)]
    for client in clients:
        log_in(client)
        assert client.get("/account", headers=HTML).status_code == 200
    return clients


def with_cookie(app: Flask, cookie: str) -> FlaskClient:
    """A new client holding a session cookie someone saved."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def test_logging_out_ends_every_session_of_the_user(app: Flask) -> None:
    here, elsewhere = logged_in_clients(app, 2)
    saved = here.get_cookie("session").value
    assert with_cookie(app, saved).get("/account", headers=HTML).status_code == 200
    assert here.post("/logout").status_code == 303
    assert with_cookie(app, saved).get("/account", headers=HTML).status_code == 302  # a copied cookie too
    assert elsewhere.get("/account", headers=HTML).status_code == 302
    log_in(here)  # and logging in again works
    assert here.get("/account", headers=HTML).status_code == 200


def test_a_new_password_ends_every_other_session(app: Flask) -> None:
    here, elsewhere = logged_in_clients(app, 2)
    saved = here.get_cookie("session").value
    changed = here.post("/account/password", data={"current": ADMIN_PASSWORD, "new": "another long password"})
    assert "Every other session" in here.get(changed.headers["Location"]).get_data(as_text=True)
    assert here.get("/account", headers=HTML).status_code == 200  # this browser has a new session
    assert elsewhere.get("/account", headers=HTML).status_code == 302
    assert with_cookie(app, saved).get("/account", headers=HTML).status_code == 302


def test_set_password_on_the_command_line_ends_the_users_sessions(app: Flask) -> None:
    (client,) = logged_in_clients(app, 1)
    result = app.test_cli_runner().invoke(args=["set-password", "admin", "--password", "another long password"])
    assert result.exit_code == 0, result.output
    assert client.get("/account", headers=HTML).status_code == 302


def test_a_session_that_names_no_session_version_is_refused(app: Flask) -> None:
    """The cookies signed before session versions named the user's id alone."""
    (client,) = logged_in_clients(app, 1)
    with client.session_transaction() as session:
        session["_user_id"] = str(accounts(app).by_name("admin").id)
    assert client.get("/account", headers=HTML).status_code == 302


def test_a_removed_user_is_logged_out_at_once(app: Flask) -> None:
    app.test_cli_runner().invoke(args=["create-user", "dana", "--password", "a long enough password"])
    client = app.test_client()
    log_in(client, "dana", "a long enough password")
    assert client.get("/", headers=HTML).status_code == 200
    with app.extensions["jobs"].store.session() as session:
        session.execute(delete(User).where(User.username == "dana"))
    assert client.get("/", headers=HTML).status_code == 302


def test_bearer_requests_need_no_csrf_token(api_client: FlaskClient, app: Flask) -> None:
    """CSRF is about the cookies a browser sends on its own; it never sends a bearer token so."""
    created = api_client.post("/generate", json={"startup": "Acme"})
    assert created.status_code == 202
    cancelled = api_client.post(f"/api/jobs/{created.get_json()['job_id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "REVOKED"
    assert api_client.post("/jobs", data={"startups": "Zeta"}).status_code == 303  # the dashboard's form too


def test_tokens_from_the_account_page_are_shown_once_and_never_put_in_a_cookie(app: Flask) -> None:
    """The secret is on the page that answers the POST itself: the session cookie is signed, not
    encrypted, so a secret kept there for the next page could be read from the cookie."""
    client = app.test_client()
    log_in(client)
    created = client.post("/account/tokens", data={"name": "laptop"})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = re.search(r'<code class="token">(sr_[^<]+)</code>', created.get_data(as_text=True)).group(1)
    assert not any(token in cookie for cookie in created.headers.getlist("Set-Cookie"))
    with client.session_transaction() as session:
        assert token not in repr(dict(session))
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    again = client.get("/account").get_data(as_text=True)
    assert token not in again and "laptop" in again


def test_a_bearer_token_cannot_manage_tokens_or_the_password(api_client: FlaskClient, app: Flask) -> None:
    """A leaked token must not mint more tokens, revoke the owner's or change the password."""
    admin = accounts(app).by_name("admin")
    kept, _ = accounts(app).create_token("admin", "kept")
    answers = [
        api_client.post("/account/tokens", data={"name": "minted"}),
        api_client.post(f"/account/tokens/{kept.id}/revoke"),
        api_client.post("/account/password", data={"current": ADMIN_PASSWORD, "new": "a password of mine"}),
    ]
    for answer in answers:
        assert answer.status_code == 403 and answer.is_json, answer.get_data(as_text=True)
        assert "account page" in answer.get_json()["error"]
    assert [token.name for token in accounts(app).tokens_of(admin.id)] == ["kept"]
    assert accounts(app).authenticate("admin", ADMIN_PASSWORD) is not None


def test_api_token_setting_is_admins(app: Flask) -> None:
    response = app.test_client().post("/generate", json={"startup": "Acme"}, headers=AUTH)
    job = app.extensions["jobs"].store.get_job(response.get_json()["job_id"])
    assert job.created_by == "admin"


def test_admin_is_made_once_with_a_random_password_when_none_is_set(settings: Settings) -> None:
    settings.admin_password = None
    first = create_app(settings)
    password_file = settings.data_dir / "admin-password"
    password = password_file.read_text().strip()
    assert len(password) >= 12 and oct(password_file.stat().st_mode & 0o777) == "0o600"
    assert accounts(first).authenticate("admin", password) is not None
    password_file.unlink()
    create_app(settings)  # a restart: admin exists, nothing new is made or written
    assert not password_file.exists()


def test_submissions_are_rate_limited_per_user(settings: Settings, clean_redis: RedisServer) -> None:
    settings.submit_rate_per_minute = 3
    app = create_app(settings)
    client = app.test_client()
    answers = [client.post("/generate", json={"startup": f"S{i}"}, headers=AUTH) for i in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.is_json and "at most 3 reports a minute" in refused.get_json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert "Retry-After" not in answers[0].headers  # only a refusal says when to come back
    assert len(app.extensions["jobs"].store.recent_jobs(10)) == 3


def test_submissions_refused_for_their_input_use_none_of_the_limit(
    settings: Settings, clean_redis: RedisServer
) -> None:
    settings.submit_rate_per_minute = 2
    app = create_app(settings)
    client = app.test_client()
    for _ in range(3):  # a script sending bad input, and a dashboard batch with nothing in it
        assert client.post("/generate", json={"startup": ""}, headers=AUTH).status_code == 400
    log_in(client)
    assert client.post("/jobs", data={"startups": "   "}, headers=HTML).status_code == 400
    codes = [client.post("/generate", json={"startup": f"S{i}"}, headers=AUTH).status_code for i in range(3)]
    assert codes == [202, 202, 429]


def test_a_repeated_idempotency_key_or_a_joined_report_uses_none_of_the_limit(
    settings: Settings, clean_redis: RedisServer
) -> None:
    settings.submit_rate_per_minute = 2
    client = create_app(settings).test_client()
    keyed = {**AUTH, "Idempotency-Key": "import/1"}
    assert client.post("/generate", json={"startup": "Acme"}, headers=keyed).status_code == 202
    assert client.post("/generate", json={"startup": "Acme"}, headers=keyed).get_json()["status"] == "duplicate"
    assert client.post("/generate", json={"startup": "acme"}, headers=AUTH).get_json()["status"] == "joined"
    codes = [client.post("/generate", json={"startup": f"S{i}"}, headers=AUTH).status_code for i in range(2)]
    assert codes == [202, 429]  # one new job left of two: only Acme's counted


def test_live_jobs_per_user_are_capped(settings: Settings) -> None:
    settings.max_live_jobs_per_user = 2
    app = create_app(settings)
    client = app.test_client()
    answers = [client.post("/generate", json={"startup": f"S{i}"}, headers=AUTH) for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert "Retry-After" not in answers[2].headers  # no time would be right: jobs must finish first
    log_in(client)
    page = client.post("/jobs", data={"startups": "X\nY"}, headers=HTML)
    assert page.status_code == 429 and "the limit is 2 at once" in page.get_data(as_text=True)


def test_the_limit_counts_each_name_of_a_batch_and_keeps_the_names_in_the_box(
    settings: Settings, clean_redis: RedisServer
) -> None:
    settings.submit_rate_per_minute = 3
    app = create_app(settings)
    client = app.test_client()
    log_in(client)
    assert client.post("/jobs", data={"startups": "A\nB"}).status_code == 303
    page = client.post("/jobs", data={"startups": "C\nD"}, headers=HTML)
    assert page.status_code == 429 and "C\nD</textarea>" in page.get_data(as_text=True)
    assert "at most 3 reports a minute" in page.get_data(as_text=True) and int(page.headers["Retry-After"]) > 0
    # The API and the dashboard share the budget: one is left.
    assert client.post("/generate", json={"startup": "E"}, headers=AUTH).status_code == 202
    assert client.post("/generate", json={"startup": "F"}, headers=AUTH).status_code == 429


def test_api_processes_share_the_limits_through_redis(settings: Settings, clean_redis: RedisServer) -> None:
    """Two app instances (two gunicorn processes, or two machines) on one Redis: one budget."""
    settings.submit_rate_per_minute = 3
    first, second = create_app(settings).test_client(), create_app(settings).test_client()
    codes = [
        client.post("/generate", json={"startup": f"S{i}"}, headers=AUTH).status_code
        for i, client in enumerate([first, second, first, second])
    ]
    assert codes == [202, 202, 202, 429]


def test_failed_log_ins_are_limited_per_client_address(app: Flask, clean_redis: RedisServer) -> None:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.1"  # not the other tests' 127.0.0.1, which must log in
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    wrong = {"username": "admin", "password": "wrong password", "csrf_token": token}
    right = {**wrong, "password": ADMIN_PASSWORD}
    for _ in range(3):  # log-ins that work count nothing
        assert client.post("/login", data=right).status_code == 303
        wrong["csrf_token"] = right["csrf_token"] = csrf_token_of(client.get("/login").get_data(as_text=True))
    # A name each, so that only the address's budget runs out (each account has one of its own).
    codes = [client.post("/login", data={**wrong, "username": f"guess{i}"}).status_code for i in range(11)]
    assert codes == [401] * 10 + [429]
    refused = client.post("/login", data=right)  # the right password too, until the minute is up
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 61
    assert "Too many failed log-ins" in refused.get_data(as_text=True)
    other = client.post("/login", data=right, environ_base={"REMOTE_ADDR": "192.0.2.2"})
    assert other.status_code == 303  # another address has a budget of its own


def test_failed_log_ins_are_limited_per_account(
    app: Flask, clean_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Guesses at one account from many addresses: each address is under its own limit, the
    account's runs out. The name counts as accounts compare it (case and spaces aside)."""
    app.test_cli_runner().invoke(args=["create-user", "dana", "--password", "a long enough password"])
    client = app.test_client()
    token = csrf_token_of(client.get("/login").get_data(as_text=True))

    def log_in_from(address: str, username: str, password: str) -> int:
        form = {"username": username, "password": password, "csrf_token": token}
        return client.post("/login", data=form, environ_base={"REMOTE_ADDR": address}).status_code

    names = ["admin", " Admin", "ADMIN "]
    try:
        codes = [log_in_from(f"198.51.100.{i}", names[i % 3], "wrong password") for i in range(11)]
        assert codes == [401] * 10 + [429]
        refused = client.post(
            "/login",
            data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
            environ_base={"REMOTE_ADDR": "198.51.100.99"},
        )
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 61
        assert "Too many failed log-ins for this account" in refused.get_data(as_text=True)
        warnings = [r.getMessage() for r in caplog.records if r.name == "webapp.auth" and r.levelname == "WARNING"]
        assert "for the account: username 'admin' from 198.51.100.10" in warnings[0]
        assert log_in_from("198.51.100.11", "dana", "a long enough password") == 303  # another account is unaffected
    finally:
        clean_redis.client().flushall()  # admin's budget is spent, and the next tests log in as admin
