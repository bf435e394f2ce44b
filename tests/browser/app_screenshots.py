"""Screenshots of the account's pages for the README: a fresh SQLite database with a few pointers, pulls and
payout requests (the bridge over the fake bitcoind), served on 127.0.0.1 and shot in Debian's Chromium.

    .venv/bin/python -m tests.browser.app_screenshots docs/screenshots
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Page, async_playwright

from spsp_pull.bridge.amounts import DebitUnits
from spsp_pull.bridge.network import Network
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import reservations
from spsp_pull.store.database import Database, sqlite_url
from spsp_pull.store.pointers import find_by_token
from tests.api.serving import served_api
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.browser.conftest import CHROMIUM, Site

LEASE = timedelta(seconds=60)


async def pull(site: Site, token: str, amount: int) -> None:
    record = await find_by_token(site.context.db, token)
    assert record is not None
    grant = await reservations.reserve(
        site.context.db, record.id, amount, kind=ReservationKind.STREAM, now=site.clock.now(), lease=LEASE
    )
    assert grant is not None
    await reservations.settle_all(site.context.db, [(grant.reservation_id, amount)], now=site.clock.now())


async def populate(site: Site) -> str:
    """The wallet's pointers in several states; the rent one (returned) has pulls and payout requests."""
    rent: str = (await site.create_pointer(description="Rent for the flat", amount="150000"))["token"]
    await site.create_pointer(description="Gym membership", amount="4500")
    news = (await site.create_pointer(description="Daily newspaper", amount="120", interval="P1D"))["token"]
    paused = (await site.create_pointer(description="Music streaming", amount="999"))["token"]
    await site.create_pointer(amount="2500", assetCode="EUR", interval="P1W", cycles=52)
    site.clock.advance(timedelta(days=40))
    await pull(site, rent, 150000)
    await pull(site, rent, 90000)
    for token, body in ((paused, {"paused": True}), (rent, {"cycles": 24})):
        response = await site.client.patch(f"/pointers/{token}", json=body, headers=site.auth())
        assert response.status == 200, await response.text()
    assert (await site.client.delete(f"/pointers/{news}", headers=site.auth())).status == 200
    bridge = site.context.bridge
    record = await find_by_token(site.context.db, rent)
    assert bridge is not None and record is not None
    address = factories.address(Network.REGTEST, "p2wpkh", "screenshots")
    for amount in (25000, 40000):
        await harness.offer(bridge, record, address, amount=DebitUnits(amount))
    return rent


async def shoot(page: Page, url: str, path: Path) -> None:
    await page.goto(url)
    await page.screenshot(path=str(path), full_page=True)
    print(path)


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = Database(sqlite_url(Path(directory) / "screenshots.sqlite3"))
        await db.migrate()
        clock = ManualClock(factories.NOW)
        node = FakeBitcoind()
        node.fund(50_000_000, count=2)
        await node.start()
        try:
            async with (
                harness.running(harness.settings(node), db, clock) as bridge,
                served_api(db, clock, bridge) as served,
                async_playwright() as playwright,
            ):
                site = Site(served.client, served.context, clock, served.wallet_key, served.other_key)
                rent = await populate(site)
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
                page = await browser.new_page(viewport={"width": 1000, "height": 700})
                await shoot(page, f"{site.url}/app/sign-in", out / "app-sign-in.png")
                await page.get_by_label("API key").fill(site.wallet_key)
                await page.get_by_role("button", name="Sign in").click()
                await shoot(page, f"{site.url}/app/", out / "app-pointers.png")
                await shoot(page, f"{site.url}/app/pointers/{rent}", out / "app-pointer.png")
                await shoot(page, f"{site.url}/app/pointers/new", out / "app-new-pointer.png")
                await shoot(page, f"{site.url}/app/payouts", out / "app-payouts.png")
                await shoot(page, f"{site.url}/app/keys", out / "app-keys.png")
                await browser.close()
        finally:
            await node.stop()
            await db.close()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
