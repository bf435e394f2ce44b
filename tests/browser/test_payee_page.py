"""The payee's page in Chromium: the amounts in words, the payment pointer, the history, hostile text."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import expect

from spsp_pull.domain.clock import isoformat_z
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import reservations
from spsp_pull.store.pointers import find_by_token
from spsp_pull.web.words import moment
from tests.browser.conftest import Site, Tab, unlabelled_controls

HOSTILE = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"


async def test_payee_reads_the_amounts(site: Site, tab: Tab) -> None:
    created = await site.create_pointer(description="Rent for the flat", cycles=12)
    site.clock.advance(timedelta(days=62))  # into cycle 3
    page = tab.page
    response = await page.goto(f"{site.url}/{created['token']}")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("Rent for the flat")
    await expect(page.locator("#terms")).to_have_text("10.00 USD every month, 12 cycles")
    await expect(page.locator("#cycle")).to_have_text("cycle 3 of 12")
    await expect(page.locator("#available")).to_have_text("30.00 USD")  # cap false: three cycles' worth
    await expect(page.locator("#state")).to_have_text("Active")
    await expect(page.locator("#next-cycle")).to_contain_text("Cycle 4 starts ")
    await expect(page.get_by_label("Payment pointer for your wallet")).to_have_value(
        f"$pull.example/{created['token']}"
    )
    await expect(page.locator("#history")).to_have_text("Nothing has been pulled yet.")
    assert tab.dialogs == [] and tab.console_errors == []


async def test_hostile_description_and_metadata_render_as_text(site: Site, tab: Tab) -> None:
    created = await site.create_pointer(description=HOSTILE, metadata={"note": HOSTILE})
    page = tab.page
    response = await page.goto(f"{site.url}/{created['token']}")
    assert response is not None
    assert (await response.all_headers())["content-security-policy"].startswith("default-src 'self'")
    await expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    await page.get_by_text("Details from the payer").click()
    await expect(page.locator("#metadata")).to_contain_text(HOSTILE)
    assert await page.title() == f"{HOSTILE} · spsp-pull"
    assert await page.locator("img").count() == 0
    assert await page.locator("script").count() == 1  # only /static/copy.js
    assert tab.dialogs == []


async def test_page_works_without_scripts(site: Site, tab_without_scripts: Tab) -> None:
    created = await site.create_pointer(description="Piano lessons", amount="2500", interval="P1W", cycles=4)
    record = await find_by_token(site.context.db, created["token"])
    assert record is not None
    now = site.clock.now()
    grant = await reservations.reserve(
        site.context.db, record.id, 1200, kind=ReservationKind.STREAM, now=now, lease=timedelta(30)
    )
    assert grant is not None
    await reservations.settle(site.context.db, grant.reservation_id, 1200, now=now)
    page = tab_without_scripts.page
    await page.goto(f"{site.url}/{created['token']}")
    await expect(page.locator("#terms")).to_have_text("25.00 USD every week, 4 cycles")
    await expect(page.locator("#available")).to_have_text("13.00 USD")
    await expect(page.locator("#pulled-total")).to_have_text("12.00 USD")
    await expect(page.locator("#history tbody tr")).to_have_count(1)
    await expect(page.locator("#history tbody tr")).to_contain_text("12.00 USD")
    await expect(page.locator("#history tbody tr")).to_contain_text("Interledger pull")
    # Without scripts the copy button stays hidden; the pointer's text is there to select and copy.
    await expect(page.get_by_role("button", name="Copy payment pointer")).to_be_hidden()
    field = page.get_by_label("Payment pointer for your wallet")
    await field.focus()
    await page.keyboard.press("Control+A")
    assert await field.evaluate("f => f.value.substring(f.selectionStart, f.selectionEnd)") == (
        f"$pull.example/{created['token']}"
    )


async def test_copy_button_copies_the_pointer(site: Site, tab: Tab) -> None:
    created = await site.create_pointer()
    await tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = tab.page
    await page.goto(f"{site.url}/{created['token']}")
    button = page.get_by_role("button", name="Copy payment pointer")
    await button.focus()
    await page.keyboard.press("Enter")  # by keyboard
    await expect(page.locator("#payment-pointer-copied")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == f"$pull.example/{created['token']}"


async def test_states_in_words(site: Site, tab: Tab) -> None:
    later = site.clock.now() + timedelta(days=3)
    pending = await site.create_pointer(start=later.isoformat())
    cancelled = await site.create_pointer()
    response = await site.client.delete(f"/pointers/{cancelled['token']}", headers=site.auth())
    assert response.status == 200, await response.text()
    ended = await site.create_pointer(cycles=1)
    page = tab.page
    await page.goto(f"{site.url}/{pending['token']}")
    await expect(page.locator("#state")).to_contain_text("Starts 3 February 2024")
    await expect(page.locator("#next-cycle")).to_contain_text("Cycle 1 starts 3 February 2024")
    site.clock.advance(timedelta(days=40))
    await page.reload()
    await expect(page.locator("#state")).to_have_text("Active")
    await page.goto(f"{site.url}/{cancelled['token']}")
    await expect(page.locator("#state")).to_contain_text("Cancelled on ")
    await expect(page.locator("#available")).to_have_text("0.00 USD")
    await page.goto(f"{site.url}/{ended['token']}")
    await expect(page.locator("#state")).to_have_text("Ended: all cycles are over")
    await expect(page.locator("#cycle")).to_have_text("cycle 1 of 1 (the last cycle is over)")
    assert tab.dialogs == []


async def test_paused_until_and_resumed(site: Site, tab: Tab) -> None:
    token = (await site.create_pointer(description="Gym membership"))["token"]
    resumes = site.clock.now() + timedelta(days=45)
    response = await site.client.patch(
        f"/pointers/{token}", json={"paused": True, "resumesAt": isoformat_z(resumes)}, headers=site.auth()
    )
    assert response.status == 200, await response.text()
    page = tab.page
    await page.goto(f"{site.url}/{token}")
    await expect(page.locator("#state")).to_have_text(f"Paused until {moment(resumes)}")
    await expect(page.locator("#available")).to_have_text("0.00 USD")
    await expect(page.locator("#next-cycle")).to_contain_text("grants nothing if the pause still holds then")
    response = await site.client.patch(f"/pointers/{token}", json={"paused": True}, headers=site.auth())
    assert response.status == 200, await response.text()
    await page.reload()
    await expect(page.locator("#state")).to_have_text("Paused until the payer resumes it")
    response = await site.client.patch(f"/pointers/{token}", json={"paused": False}, headers=site.auth())
    assert response.status == 200, await response.text()
    await page.reload()
    await expect(page.locator("#state")).to_have_text("Active")
    await expect(page.locator("#available")).to_have_text("10.00 USD")


async def test_every_field_labelled_and_reachable_by_keyboard(site: Site, tab: Tab) -> None:
    token = (await site.create_pointer())["token"]
    page = tab.page
    await page.goto(f"{site.url}/{token}")
    assert await unlabelled_controls(page) == []
    reached = []
    for _ in range(8):  # Tab walks the page: skip link, home, the pointer field, its copy button
        await page.keyboard.press("Tab")
        reached.append(
            await page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        )
    assert "payment-pointer" in reached and "Copy payment pointer" in reached, reached
