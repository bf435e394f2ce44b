"""Pages in a real browser: Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`; scripts/test
installs it) driven by Playwright, against the app served on 127.0.0.1 over a real database.

Nothing here downloads a browser: Playwright launches the system Chromium by its path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, async_playwright

from spsp_pull.api.context import ApiContext
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.api.serving import served_api

CHROMIUM = Path(os.environ.get("SPSP_TEST_CHROMIUM", "/usr/bin/chromium"))
BROWSER_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (scripts/test does it as root)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """A page of its own browser context, with the dialogs (alert, confirm) it opened and the console
    errors it logged: a page that runs injected script shows up in `dialogs`."""

    page: Page
    context: BrowserContext
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


async def open_tab(browser: Browser, *, javascript: bool = True) -> Tab:
    context = await browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1000, "height": 900}
    )
    context.set_default_timeout(10_000)  # a bound on waiting for the page, not a measurement
    page = await context.new_page()
    tab = Tab(page, context)

    async def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.console_errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    return tab


UNLABELLED = """() => {
  const named = el => el.getAttribute('aria-label') || el.textContent.trim();
  const fields = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')];
  const shown = [...document.querySelectorAll('button, a')].filter(el => el.offsetParent !== null);
  return [...fields.filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')),
          ...shown.filter(el => !named(el))].map(el => el.outerHTML);
}"""


async def unlabelled_controls(page: Page) -> list[str]:
    """Fields without a label and visible buttons or links without a name, as HTML: [] on a good page."""
    found: list[str] = await page.evaluate(UNLABELLED)
    return found


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    """A page with JavaScript on."""
    opened = await open_tab(browser)
    yield opened
    await opened.context.close()


@pytest.fixture
async def tab_without_scripts(browser: Browser) -> AsyncIterator[Tab]:
    """A page with JavaScript off: every flow must work in it too."""
    opened = await open_tab(browser, javascript=False)
    yield opened
    await opened.context.close()


@dataclass
class Site:
    """The app served on 127.0.0.1 (with the query fast path, as in production): `url` is its root."""

    client: TestClient[Any, Any]
    context: ApiContext
    clock: ManualClock
    wallet_key: str
    other_key: str

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.wallet_key}"}

    async def create_pointer(self, key: str | None = None, **fields: object) -> dict[str, Any]:
        """A pointer created through the API (by the wallet account unless `key` says otherwise)."""
        body = {
            "amount": "1000",
            "assetCode": "USD",
            "assetScale": 2,
            "interval": "P1M",
            "cycles": 12,
            "cap": False,
        }
        response = await self.client.post("/", json={**body, **fields}, headers=self.auth(key))
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
        return created


@pytest.fixture
async def site(db: Database, clock: ManualClock) -> AsyncIterator[Site]:
    async with served_api(db, clock) as served:
        yield Site(served.client, served.context, clock, served.wallet_key, served.other_key)
