"""Headless Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, against the real stack:
the tests' redis-server, a Celery worker and the API under gunicorn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, sync_playwright

from config import PROJECT_ROOT
from tests.conftest import ADMIN_PASSWORD

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is not installed: ./test.sh installs it (apt-get install -y chromium).")
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class PageWatch:
    """What a page did that it must not: console errors, uncaught exceptions, dialogs."""

    def __init__(self) -> None:
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            self.console_errors.append(f"{message.text} (at {where or 'unknown'})")

    def on_page_error(self, error: Exception) -> None:
        self.console_errors.append(f"uncaught: {error}")

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser: Browser, watch: PageWatch, api_server: str) -> Iterator[Page]:
    """A fresh page. It depends on the API so that the server outlives it: cards still polling
    when a test ends must not hit a server that is already gone."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    page.on("dialog", watch.on_dialog)
    log_in(page, api_server)
    yield page
    context.close()
    assert watch.console_errors == [], watch.console_errors
    assert watch.dialogs == [], f"a dialog fired: {watch.dialogs}"


def log_in(page: Page, base: str) -> None:
    """Log in through the real form, as an analyst would."""
    page.goto(base + "/login")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database variants are covered by the other suites; here it is the pages."""
    return f"sqlite:///{tmp_path / 'reports.db'}"
