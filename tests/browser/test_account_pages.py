"""The account's pages (/app/) in Chromium: the payer signs in and manages a pointer, approves payout
requests, rotates the webhook secret, makes and revokes API keys — each flow with scripts on and off —
and what must be refused: no session, another account's pointer, a form without its CSRF field, and
hostile text that must stay text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from spsp_pull.bridge.amounts import DebitUnits
from spsp_pull.bridge.network import Network
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from spsp_pull.store.pointers import find_by_token
from tests.api.serving import served_api
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.browser.conftest import Site, Tab, open_tab

HOSTILE = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"


@pytest.fixture(params=[True, False], ids=["scripts", "no-scripts"])
async def any_tab(request: pytest.FixtureRequest, browser: Browser) -> AsyncIterator[Tab]:
    """A page with JavaScript on, then off: every flow works either way."""
    opened = await open_tab(browser, javascript=request.param)
    yield opened
    await opened.context.close()


async def sign_in(page: Page, site: Site, key: str | None = None, path: str = "/app/") -> None:
    await page.goto(f"{site.url}{path}")
    await expect(page).to_have_url(f"{site.url}/app/sign-in?next={path}")
    await page.get_by_label("API key").fill(key or site.wallet_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{site.url}{path}")


async def api_pointer(site: Site, token: str, key: str | None = None) -> dict[str, Any]:
    response = await site.client.get(f"/pointers/{token}", headers=site.auth(key))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def notice(page: Page) -> Any:
    return page.locator(".message.success")


async def test_payer_creates_extends_pauses_resumes_and_cancels(site: Site, any_tab: Tab) -> None:
    page = any_tab.page
    await sign_in(page, site)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pointers")
    await page.get_by_role("navigation").get_by_role("link", name="New pointer").click()

    await page.get_by_label("Description").fill("Rent for the flat")
    await page.get_by_label("Amount per cycle").fill("150000")
    await page.get_by_label("Cycles").fill("0")
    await page.get_by_role("button", name="Create pointer").click()
    refusal = await site.client.post("/", json={**_API_BODY, "cycles": 0}, headers=site.auth())
    problem = await refusal.json()
    await expect(page.get_by_role("alert")).to_contain_text(problem["detail"])  # the API's own message
    await expect(page.get_by_label("Cycles")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Description")).to_have_value("Rent for the flat")  # kept

    await page.get_by_label("Cycles").fill("12")
    await page.get_by_role("button", name="Create pointer").click()
    await expect(notice(page)).to_have_text("The pointer was created.")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Rent for the flat")
    token = page.url.rsplit("/", 1)[1].split("?")[0]
    created = await api_pointer(site, token)
    assert (created["amount"], created["assetCode"], created["cycles"]) == ("150000", "USD", 12)
    await expect(page.locator(".facts")).to_contain_text("1,500.00 USD")

    await page.get_by_role("button", name="Extend").click()
    await expect(page.get_by_label("Cycles")).to_have_value("12")
    await page.get_by_label("Cycles").fill("0")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_contain_text("(invalid-cycles)")
    assert (await api_pointer(site, token))["cycles"] == 12
    await page.get_by_label("Cycles").fill("24")
    await page.get_by_role("button", name="Save").click()
    await expect(notice(page)).to_have_text("The number of cycles was saved.")
    assert (await api_pointer(site, token))["cycles"] == 24

    await page.get_by_role("button", name="Pause").click()
    await expect(notice(page)).to_have_text("The pointer is paused.")
    assert (await api_pointer(site, token))["state"] == "paused"
    await page.get_by_role("button", name="Resume").click()
    await expect(notice(page)).to_have_text("The pointer is active again.")
    assert (await api_pointer(site, token))["state"] == "active"

    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Cancel “Rent for the flat”?")
    assert (await api_pointer(site, token))["state"] == "active"  # asking changed nothing
    await page.get_by_role("button", name="Confirm").click()
    await expect(notice(page)).to_have_text("The pointer was cancelled.")
    assert (await api_pointer(site, token))["state"] == "cancelled"
    reasons = [v["reason"] for v in (await api_pointer(site, token))["versions"]]
    assert reasons[0] == "created" and reasons[-1] == "cancelled" and len(reasons) == 5

    await page.get_by_role("navigation").get_by_role("link", name="Pointers").click()
    await page.get_by_label("State").select_option("cancelled")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("link", name="Rent for the flat")).to_be_visible()
    await page.get_by_label("State").select_option("active")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("link", name="Rent for the flat")).to_have_count(0)
    refused_form = "the server responded with a status of 422"  # the pages that showed the refusals
    assert any_tab.dialogs == [] and [e for e in any_tab.console_errors if refused_form not in e] == []


_API_BODY = {"amount": "150000", "assetCode": "USD", "assetScale": 2, "interval": "P1M", "cap": False}


async def test_list_links_by_description_or_token(site: Site, tab: Tab) -> None:
    named = await site.create_pointer(description="Gym")
    unnamed = await site.create_pointer()
    await sign_in(tab.page, site)
    rows = tab.page.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(tab.page.get_by_role("link", name="Gym")).to_have_attribute(
        "href", f"/app/pointers/{named['token']}"
    )
    await expect(tab.page.get_by_role("link", name=unnamed["token"])).to_be_visible()
    await expect(rows.nth(0)).to_contain_text("active")
    await expect(rows.nth(0)).to_contain_text("10.00 USD")
    navigation = tab.page.get_by_role("navigation")
    await expect(navigation.get_by_role("link", name="Pointers")).to_have_attribute("aria-current", "page")
    await expect(navigation.locator("[aria-current]")).to_have_count(1)


# -- payouts -------------------------------------------------------------------------------------------

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "account pages")


@pytest.fixture
async def payout_site(db: Database) -> AsyncIterator[Site]:
    """The app with a payout bridge over the fake bitcoind (no background workers: approved payouts wait
    in QUEUED, which is all the approval needs to show)."""
    clock = ManualClock(factories.NOW)
    node = FakeBitcoind()
    node.fund(50_000_000, count=2)
    await node.start()
    try:
        async with (
            harness.running(harness.settings(node), db, clock) as bridge,
            served_api(db, clock, bridge) as served,
        ):
            yield Site(served.client, served.context, clock, served.wallet_key, served.other_key)
    finally:
        await node.stop()


async def test_payer_approves_and_cancels_selected_payout_requests(payout_site: Site, any_tab: Tab) -> None:
    site, page = payout_site, any_tab.page
    bridge = site.context.bridge
    assert bridge is not None
    record = await find_by_token(site.context.db, (await site.create_pointer(amount="100000"))["token"])
    assert record is not None
    requested = [
        await harness.offer(bridge, record, ADDRESS, amount=DebitUnits(amount))
        for amount in (1000, 2000, 3000)
    ]
    theirs = await find_by_token(site.context.db, (await site.create_pointer(key=site.other_key))["token"])
    assert theirs is not None
    other_request = await harness.offer(bridge, theirs, ADDRESS, amount=DebitUnits(500))

    await sign_in(page, site)
    await expect(page.get_by_role("link", name="3 new payout requests")).to_be_visible()
    await page.get_by_role("link", name="3 new payout requests").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Outstanding payouts")
    await expect(page.locator("tbody tr")).to_have_count(3)  # not the other account's
    first_row = page.locator("tbody tr", has=page.get_by_label(f"Select payout {requested[0].public_id}"))
    await expect(first_row).to_contain_text("10.00 USD")
    await expect(first_row).to_contain_text("Bitcoin on-chain")
    await page.get_by_label(f"Select payout {requested[0].public_id}").check()
    await page.get_by_label(f"Select payout {requested[2].public_id}").check()
    await page.get_by_role("button", name="Approve selected").click()
    await expect(notice(page)).to_have_text("The selected payouts were approved.")
    await expect(page.get_by_role("link", name="1 new payout request")).to_be_visible()
    statuses = [(await harness.payout(site.context.db, p)).status for p in requested]
    assert statuses == ["QUEUED", "NEW", "QUEUED"]

    await page.get_by_label(f"Select payout {requested[1].public_id}").check()
    await page.get_by_role("button", name="Cancel selected").click()
    await expect(notice(page)).to_have_text("The selected payouts were cancelled.")
    await expect(page.get_by_role("link", name="new payout request")).to_have_count(0)
    statuses = [(await harness.payout(site.context.db, p)).status for p in requested]
    assert statuses == ["QUEUED", "CANCELLED", "QUEUED"]
    assert (await harness.payout(site.context.db, other_request)).status == "NEW"
    await page.goto(f"{site.url}/app/pointers/{record.token}")
    on_pointer = page.locator("section", has=page.get_by_role("heading", name="Payouts"))
    await expect(on_pointer.locator("tbody tr")).to_have_count(3)
    await expect(on_pointer.locator("tbody tr", has_text=requested[1].public_id)).to_contain_text("CANCELLED")
    assert (await audit_ledger(site.context.db, now=site.clock.now())).mismatches == ()
    assert any_tab.dialogs == [] and any_tab.console_errors == []


# -- the account's secrets -------------------------------------------------------------------------------


async def test_webhook_secret_shown_and_rotated(site: Site, any_tab: Tab) -> None:
    page = any_tab.page
    before = (await (await site.client.get("/me/webhook-secret", headers=site.auth())).json())[
        "webhookSecret"
    ]
    await sign_in(page, site, path="/app/webhook")
    secret = page.locator("#webhook-secret")
    await expect(secret).to_be_hidden()
    await page.get_by_text("Show the webhook secret").click()
    await expect(secret).to_have_text(before)
    await page.get_by_role("button", name="Rotate the webhook secret").click()
    await expect(notice(page)).to_have_text("The webhook secret was rotated.")
    after = (await (await site.client.get("/me/webhook-secret", headers=site.auth())).json())["webhookSecret"]
    assert after != before
    await page.get_by_text("Show the webhook secret").click()
    await expect(secret).to_have_text(after)
    await expect(page.locator("main")).to_contain_text("The previous secret also signs until")


async def test_api_keys_created_and_revoked(site: Site, any_tab: Tab) -> None:
    page = any_tab.page
    await sign_in(page, site, path="/app/keys")
    await page.get_by_label("Label").fill("accounting <export>")
    await page.get_by_role("button", name="Create API key").click()
    new_key = (await page.locator("#new-api-key").text_content() or "").strip()
    assert (await site.client.get("/me", headers=site.auth(new_key))).status == 200
    row = page.locator("tbody tr", has_text="accounting <export>")
    await expect(row).to_contain_text("live")
    await row.get_by_role("button", name="Revoke").click()
    await expect(notice(page)).to_have_text("The API key was revoked.")
    assert (await site.client.get("/me", headers=site.auth(new_key))).status == 401
    await expect(page.locator("#new-api-key")).to_have_count(0)  # shown once, never again
    await expect(page.locator("tbody tr", has_text="accounting <export>")).to_contain_text("revoked")

    # Revoking the key this session was opened with ends the session at the next request.
    await page.locator("tbody tr", has_text="this session's").get_by_role("button", name="Revoke").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.goto(f"{site.url}/app/keys")
    await expect(page).to_have_url(f"{site.url}/app/sign-in?next=/app/keys")


# -- what is refused -------------------------------------------------------------------------------------


async def test_without_a_session_every_page_leads_to_sign_in(site: Site, tab_without_scripts: Tab) -> None:
    page = tab_without_scripts.page
    token = (await site.create_pointer())["token"]
    for path in ("/app/", "/app/payouts", "/app/webhook", "/app/keys", f"/app/pointers/{token}"):
        await page.goto(f"{site.url}{path}")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await sign_in(page, site, path=f"/app/pointers/{token}")  # and back to where it was going
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{site.url}/app/sign-in")
    await page.goto(f"{site.url}/app/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


async def test_another_accounts_pointer_is_not_found(site: Site, tab: Tab) -> None:
    theirs = (await site.create_pointer(key=site.other_key, description="Not yours"))["token"]
    await sign_in(tab.page, site)
    for path in (f"/app/pointers/{theirs}", f"/app/pointers/{theirs}/cancel"):
        response = await tab.page.goto(f"{site.url}{path}")
        assert response is not None and response.status == 404
        await expect(tab.page.get_by_role("heading", level=1)).to_have_text("Not found")
        await expect(tab.page.locator("main")).not_to_contain_text("Not yours")
    await expect(tab.page.get_by_role("link", name="Not yours")).to_have_count(0)


@pytest.mark.parametrize("tamper", ["remove", "wrong"])
async def test_form_without_its_csrf_field_is_refused(site: Site, tab: Tab, tamper: str) -> None:
    token = (await site.create_pointer(description="Keep me"))["token"]
    page = tab.page
    await sign_in(page, site, path=f"/app/pointers/{token}/cancel")
    field = page.locator("main form input[name=csrf]")
    if tamper == "remove":
        await field.evaluate("input => input.remove()")
    else:
        await field.evaluate("input => { input.value = 'f'.repeat(64) }")
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Form refused")
    assert (await api_pointer(site, token))["state"] == "active"


async def test_hostile_description_and_metadata_render_as_text(site: Site, tab: Tab) -> None:
    created = await site.create_pointer(description=HOSTILE, metadata={"note": HOSTILE})
    page = tab.page
    await sign_in(page, site)
    await expect(page.get_by_role("link", name=HOSTILE)).to_be_visible()
    await page.get_by_role("link", name=HOSTILE).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    await expect(page.locator(".facts")).to_contain_text('"note": "<img src=x onerror=alert(1)>')
    await page.goto(f"{site.url}/app/pointers/{created['token']}/cancel")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(HOSTILE)
    assert await page.locator("main img, main script").count() == 0
    assert tab.dialogs == [] and tab.console_errors == []


async def test_keyboard_alone_signs_in_and_pauses(site: Site, tab_without_scripts: Tab) -> None:
    token = (await site.create_pointer(description="By keyboard"))["token"]
    page = tab_without_scripts.page
    await page.goto(f"{site.url}/app/")
    await page.get_by_label("API key").focus()
    await page.keyboard.type(site.wallet_key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pointers")
    await tab_to(page, "By keyboard")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("By keyboard")
    await tab_to(page, "Pause")
    await page.keyboard.press("Space")
    await expect(notice(page)).to_have_text("The pointer is paused.")
    assert (await api_pointer(site, token))["state"] == "paused"


async def tab_to(page: Page, text: str) -> None:
    """Press Tab until the focused element says `text` (a bounded walk through the page's controls)."""
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"no control saying {text!r} is reachable with Tab")
