"""The payee claims a payout from the page in Chromium, against the bridge's protocol-faithful fakes of LND
and bitcoind: the offer with its locked rate, fee and expiry, the confirmation, and the payout's state as it
moves, with scripts (the page follows the payout by itself) and without (reload)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from embit import bech32
from playwright.async_api import Page, expect

from spsp_pull.bridge.network import Network
from spsp_pull.bridge.service import Bridge
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from tests.api.serving import served_api
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd
from tests.browser.conftest import Site, Tab, unlabelled_controls

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "browser claim")


@pytest.fixture
def bridge_clock() -> ManualClock:
    return ManualClock(factories.NOW)  # the time the factories sign invoices for


@pytest.fixture
async def bitcoind() -> AsyncIterator[FakeBitcoind]:
    node = FakeBitcoind()
    node.fund(50_000_000, count=2)
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def ln_node(bridge_clock: ManualClock) -> AsyncIterator[FakeLnd]:
    node = FakeLnd(clock=lambda: int(bridge_clock.now().timestamp()))
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def bridge(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind, ln_node: FakeLnd
) -> AsyncIterator[Bridge]:
    """The bridge on the fakes; the tests run its workers' steps (dispatch, batch) when they choose."""
    async with harness.running(harness.settings(bitcoind, ln_node), db, bridge_clock) as running:
        yield running


@pytest.fixture
async def payout_site(db: Database, bridge_clock: ManualClock, bridge: Bridge) -> AsyncIterator[Site]:
    async with served_api(db, bridge_clock, bridge) as served:
        yield Site(served.client, served.context, bridge_clock, served.wallet_key, served.other_key)


async def offer_from_page(page: Page, site: Site, token: str, destination: str, amount: str = "") -> None:
    await page.goto(f"{site.url}/{token}")
    await page.get_by_label("Destination").fill(destination)
    await page.get_by_label("Amount (USD)").fill(amount)
    await page.get_by_role("button", name="Get payout offer").click()
    await expect(page.locator("#payout-status")).to_have_attribute("data-status", "NEW")


async def test_claim_over_lightning_followed_to_sent(
    payout_site: Site, bridge: Bridge, ln_node: FakeLnd, tab: Tab
) -> None:
    site, page = payout_site, tab.page
    token = (await site.create_pointer(amount="100000"))["token"]  # 1,000.00 USD a month
    preimage = factories.preimage("browser claim")
    ln_node.expect(preimage)
    invoice = factories.invoice(
        Network.REGTEST,
        timestamp=int(factories.NOW.timestamp()),
        amount_msat=2_000_000,
        payment_preimage=preimage,
    )
    await offer_from_page(page, site, token, invoice)
    await expect(page.locator("#receive")).to_have_text("0.00002000 BTC (2,000 sat)")
    await expect(page.locator("#rate")).to_have_text("1 BTC = 50,000 USD")
    await expect(page.locator("#expires")).to_contain_text("2025, ")
    charged = await page.locator("#charged").inner_text()
    await page.get_by_role("button", name="Confirm payout").click()
    await expect(page.locator("#payout-status")).to_have_attribute("data-status", "QUEUED")
    await bridge.dispatch_lightning()
    # The page follows the payout (its script polls the payout's JSON) and shows it paid.
    await expect(page.locator("#payout-status")).to_have_attribute("data-status", "SENT", timeout=20_000)
    await expect(page.locator("#payout-status")).to_have_text("Sent")
    await expect(page.locator("#proof")).to_have_text(preimage.hex())
    await page.get_by_role("link", name="Back to Pull payment").click()
    await expect(page.locator("#pulled-total")).to_have_text(charged)
    assert tab.dialogs == [] and tab.console_errors == []
    await harness.assert_reservations_closed(site.context.db)
    assert (await audit_ledger(site.context.db, now=site.clock.now())).mismatches == ()


async def test_claim_on_chain_without_scripts(
    payout_site: Site, bridge: Bridge, bitcoind: FakeBitcoind, tab_without_scripts: Tab
) -> None:
    site, page = payout_site, tab_without_scripts.page
    token = (await site.create_pointer(amount="100000"))["token"]
    await offer_from_page(page, site, token, ADDRESS, "25.00")
    await expect(page.locator("#charged")).to_have_text("25.00 USD")
    await page.get_by_role("button", name="Confirm payout").click()
    await expect(page.locator("#payout-status")).to_have_attribute("data-status", "QUEUED")
    await expect(page.get_by_role("link", name="Refresh now")).to_be_visible()
    await bridge.run_batch()
    # Without scripts the page refreshes itself (every 5 s) while the payout moves.
    await expect(page.locator("#payout-status")).to_have_attribute("data-status", "SENT", timeout=20_000)
    [txid] = list(bitcoind.state.mempool)
    await expect(page.locator("#proof")).to_have_text(txid)
    await harness.assert_reservations_closed(site.context.db)
    assert (await audit_ledger(site.context.db, now=site.clock.now())).mismatches == ()


async def test_claim_refusals_shown_on_the_page(payout_site: Site, tab_without_scripts: Tab) -> None:
    site, page = payout_site, tab_without_scripts.page
    token = (await site.create_pointer(amount="1000"))["token"]  # 10.00 USD a month
    await page.goto(f"{site.url}/{token}")
    assert await unlabelled_controls(page) == []  # the claim form and the LNURL field included
    await page.get_by_label("Destination").fill(ADDRESS)
    await page.get_by_label("Amount (USD)").fill("2.505")
    await page.get_by_role("button", name="Get payout offer").click()
    amount = page.get_by_label("Amount (USD)")
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#amount-error")).to_have_text(
        "Enter the amount as a number with at most 2 decimals."
    )
    await expect(page.get_by_label("Destination")).to_have_value(ADDRESS)  # what was typed stays
    await amount.fill("20.00")
    await page.get_by_role("button", name="Get payout offer").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "The payout would cost more than the 10.00 USD available now."
    )
    await page.get_by_label("Destination").fill("bc1qnotanaddress")
    await page.get_by_label("Amount (USD)").fill("1.00")
    await page.get_by_role("button", name="Get payout offer").click()
    await expect(page.get_by_label("Destination")).to_have_attribute("aria-invalid", "true")
    listed = await (await site.client.get(f"/{token}/payouts")).json()
    assert listed["items"] == []  # nothing was created


async def test_lnurl_withdraw_code_leads_to_a_withdraw_request(payout_site: Site, tab: Tab) -> None:
    site, page = payout_site, tab.page
    token = (await site.create_pointer(amount="100000", description="Bonus"))["token"]
    await page.goto(f"{site.url}/{token}")
    code = page.get_by_role("img", name="QR code of the LNURL-withdraw link below")
    await expect(code.locator("svg path")).to_have_count(1)
    lnurl = await page.get_by_role("textbox", name="LNURL-withdraw link").input_value()
    # bech32 without its 90-character limit (LUD-01 URLs are longer); the checksum must hold.
    hrp, _, text = lnurl.lower().rpartition("1")
    data = [bech32.CHARSET.index(char) for char in text]
    assert hrp == "lnurl" and bech32.bech32_verify_checksum(hrp, data) is bech32.Encoding.BECH32
    url = bytes(bech32.convertbits(data[:-6], 5, 8, False) or []).decode()
    assert url == f"https://pull.example/{token}/lnurlw"
    response = await site.client.get(f"/{token}/lnurlw")  # the same path, on the server under test
    body = await response.json()
    assert response.status == 200 and body["tag"] == "withdrawRequest", body
    assert body["defaultDescription"] == "Bonus"
