"""Screenshots of the pages for docs/screenshots/ (shown in the README): `scripts/screenshots`.

The app runs in-process on 127.0.0.1 over a fresh SQLite database, with the payout bridge on the test
fakes of bitcoind and LND, a fixed clock, and example pointers; Chromium is Debian's, as in the tests.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Page, async_playwright

from spsp_pull.bridge.network import Network
from spsp_pull.domain.clock import ManualClock, isoformat_z
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import reservations
from spsp_pull.store.database import Database, sqlite_url
from spsp_pull.store.pointers import find_by_token
from tests.api.serving import served_api
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd
from tests.browser.conftest import CHROMIUM, Site

Shot = Callable[[Page, Site], Awaitable[None]]


async def pull(site: Site, token: str, amount: int) -> None:
    """A settled Interledger pull of `amount` units, as the STREAM side records one."""
    record = await find_by_token(site.context.db, token)
    assert record is not None
    now = site.clock.now()
    grant = await reservations.reserve(
        site.context.db, record.id, amount, kind=ReservationKind.STREAM, now=now, lease=timedelta(30)
    )
    assert grant is not None
    await reservations.settle(site.context.db, grant.reservation_id, amount, now=now)


async def take(directory: Path) -> list[Path]:
    clock = ManualClock(factories.NOW)
    bitcoind, lnd = FakeBitcoind(), FakeLnd(clock=lambda: int(clock.now().timestamp()))
    bitcoind.fund(50_000_000, count=2)
    await bitcoind.start()
    await lnd.start()
    taken: list[Path] = []
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(sqlite_url(Path(scratch) / "screenshots.sqlite3"))
        await db.migrate()
        settings = replace(harness.settings(bitcoind, lnd), background=True)
        try:
            async with (
                harness.running(settings, db, clock) as bridge,
                served_api(db, clock, bridge) as served,
                async_playwright() as playwright,
            ):
                site = Site(served.client, served.context, clock, served.wallet_key, served.other_key)
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
                page = await browser.new_page(viewport={"width": 1000, "height": 800})

                async def shot(name: str, on: Page = page, *, full_page: bool = True) -> None:
                    path = directory / f"{name}.png"
                    await on.screenshot(path=str(path), full_page=full_page)
                    taken.append(path)

                rent = await site.create_pointer(
                    description="Studio rent, Rue des Lilas 12",
                    amount="120000",
                    cycles=12,
                    metadata={"contract": "2025-041", "tenant": "A. Martin"},
                )
                for month in range(2):
                    await pull(site, rent["token"], 120000)
                    clock.advance(timedelta(days=31 if month == 0 else 30))
                await pull(site, rent["token"], 45000)
                await page.goto(f"{site.url}/{rent['token']}")
                await shot("payee-page")

                await page.get_by_label("Destination").fill(
                    factories.address(Network.REGTEST, "p2wpkh", "shot")
                )
                await page.get_by_label("Amount (USD)").fill("250.00")
                await page.get_by_role("button", name="Get payout offer").click()
                await page.wait_for_selector("#payout-status[data-status=NEW]")
                await shot("payee-payout-offer")
                await page.get_by_role("button", name="Confirm payout").click()
                await page.wait_for_selector("#payout-status[data-status=QUEUED]")
                await bridge.run_batch()
                await page.reload()
                await page.wait_for_selector("#payout-status[data-status=SENT]")
                await shot("payee-payout-sent")

                await page.goto(f"{site.url}/{rent['token']}")
                await page.get_by_label("Amount (USD)").fill("2.505")
                await page.get_by_role("button", name="Get payout offer").click()
                await page.wait_for_selector("#amount-error")
                await shot("payee-claim-error")

                gym = await site.create_pointer(description="Gym membership", amount="4500")
                resumes = isoformat_z(clock.now() + timedelta(days=40))
                paused = await site.client.patch(
                    f"/pointers/{gym['token']}",
                    json={"paused": True, "resumesAt": resumes},
                    headers=site.auth(),
                )
                assert paused.status == 200, await paused.text()
                await page.goto(f"{site.url}/{gym['token']}")
                await shot("payee-page-paused", full_page=False)

                phone = await browser.new_page(viewport={"width": 390, "height": 844})
                await phone.goto(f"{site.url}/{rent['token']}")
                await shot("payee-page-phone", phone, full_page=False)
                await browser.close()
        finally:
            await db.close()
            await lnd.stop()
            await bitcoind.stop()
    return taken


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(take(directory)):
        print(path)


if __name__ == "__main__":
    main()
