"""The account's pages over HTTP where a browser adds nothing: the pointer list's pages and state filter, and
the payout pages of a server without a payout backend."""

from __future__ import annotations

import re

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
