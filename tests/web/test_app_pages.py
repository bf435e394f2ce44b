"""The account's pages over HTTP where a browser adds nothing: the pointer list's pages and state filter, and
the payout pages of a server without a payout backend."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from spsp_pull.store import outbox
from spsp_pull.store.pointers import find_by_token
from spsp_pull.web import app_pointers
from spsp_pull.web.headers import CONTENT_SECURITY_POLICY
from tests.web.app_client import AppSite, csrf_field

_ROW_LINK = re.compile(r'<td><a href="/app/pointers/([^"]+)">')
_NEXT = re.compile(r'<a href="(/app/\?[^"]+)">Next page</a>')


def listed(page: str) -> list[str]:
    return _ROW_LINK.findall(page)


async def test_pointer_list_pages_through_the_filtered_pointers(app_site: AppSite) -> None:
    """250 pointers (more than one batch of the list's scan), every fourth cancelled: the 63 cancelled ones
    come 50 to a page in creation order, however many others lie between them, and the last page has no
    link onwards."""
    tokens = [await app_site.create_pointer(description=f"Pointer {n}") for n in range(250)]
    cancelled = tokens[::4]
    for token in cancelled:
        response = await app_site.client.delete(f"/pointers/{token}", headers=app_site.auth())
        assert response.status == 200
    await app_site.sign_in()

    first = await app_site.page("/app/?state=cancelled")
    assert listed(first) == cancelled[:50]
    found = _NEXT.search(first)
    assert found is not None
    second = await app_site.page(found.group(1).replace("&amp;", "&"))
    assert listed(second) == cancelled[50:]
    assert _NEXT.search(second) is None

    everything = await app_site.page("/app/")
    assert listed(everything) == tokens[:50]
    unknown_state = await app_site.page("/app/?state=%3Cscript%3E")
    assert listed(unknown_state) == tokens[:50]  # an unknown state filters nothing
    assert "<script>" not in unknown_state


async def test_payout_pages_without_a_payout_backend(app_site: AppSite) -> None:
    await app_site.sign_in()
    page = await app_site.page("/app/payouts")
    assert "This server makes no payouts" in page
    assert "new payout request" not in page
    response = await app_site.post("/app/payouts/approve", {"payout": "x", "csrf": csrf_field(page)})
    assert response.status == 503


async def test_pointer_page_lists_webhook_messages_and_their_attempts(app_site: AppSite) -> None:
    """What the outbox recorded for the pointer: each message with its event, state and every attempt
    (status or error, as text even when the receiver's error is markup)."""
    token = await app_site.create_pointer(description="With a webhook")
    record = await find_by_token(app_site.context.db, token)
    assert record is not None
    now = app_site.clock.now()
    async with app_site.context.db.write() as session:
        for event in ("pull.completed", "pointer.updated"):
            outbox.enqueue(
                session,
                url="https://hooks.example/in",
                event=event,
                body={"event": event},
                now=now,
                account_id=record.account_id,
                pointer_id=record.id,
            )
    first, second = await outbox.messages_for_pointer(app_site.context.db, record.id)
    for status, error, retry_at in ((None, "<b>refused</b>", now + timedelta(minutes=1)), (204, None, None)):
        await outbox.record_attempt(
            app_site.context.db,
            first[0],
            now=now,
            delivered=status is not None,
            status_code=status,
            error=error,
            duration_ms=5,
            retry_at=retry_at,
        )
    await app_site.sign_in()
    page = await app_site.page(f"/app/pointers/{token}")
    section = page[page.index("Webhook deliveries") :]
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>(.*?)</tr>", section, re.DOTALL)
    assert [(event, state) for event, state, _ in rows] == [
        ("pointer.updated", "pending"),
        ("pull.completed", "delivered"),
    ]
    assert "not tried yet" in rows[0][2]
    attempts = rows[1][2]
    assert "#1 " in attempts and "no answer — &lt;b&gt;refused&lt;/b&gt;" in attempts
    assert "#2 " in attempts and ": 204" in attempts
    assert second[1] == "pointer.updated"


async def test_pages_are_never_cached_and_carry_the_security_headers(app_site: AppSite) -> None:
    await app_site.sign_in()
    for path in ("/app/sign-in", "/app/", "/app/keys", "/app/webhook"):
        response = await app_site.client.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["Cache-Control"] == "no-store", path  # the secret and new keys included


async def test_pointer_list_reads_a_bounded_number_of_pointers_a_page(
    app_site: AppSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare state among many pointers: each page reads at most MAX_SCAN_BATCHES batches, and its "Next
    page" goes on from there, so following the links shows every match once, in order."""
    monkeypatch.setattr(app_pointers, "SCAN_BATCH", 10)
    monkeypatch.setattr(app_pointers, "MAX_SCAN_BATCHES", 2)
    tokens = [await app_site.create_pointer() for _ in range(70)]
    cancelled = [tokens[5], tokens[50], tokens[69]]
    for token in cancelled:
        assert (await app_site.client.delete(f"/pointers/{token}", headers=app_site.auth())).status == 200
    await app_site.sign_in()
    seen: list[list[str]] = []
    path: str | None = "/app/?state=cancelled"
    while path is not None and len(seen) < 10:
        page = await app_site.page(path)
        seen.append(listed(page))
        found = _NEXT.search(page)
        path = None if found is None else found.group(1).replace("&amp;", "&")
    assert seen == [[tokens[5]], [], [tokens[50]], [tokens[69]]]
