"""The pages' infrastructure in Chromium: the stylesheet from /static/ applies, the security headers come
with every HTML response, and the CSP blocks what it should."""

from __future__ import annotations

from spsp_pull.web.headers import CONTENT_SECURITY_POLICY
from tests.browser.conftest import Site, Tab


async def test_docs_page_styled_and_protected(site: Site, tab: Tab) -> None:
    response = await tab.page.goto(f"{site.url}/docs")
    assert response is not None and response.ok
    headers = await response.all_headers()
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    # The stylesheet was loaded and applied: the page's text colour is the stylesheet's, not black.
    colour = await tab.page.evaluate("getComputedStyle(document.body).color")
    assert colour == "rgb(26, 26, 26)"
    assert tab.console_errors == []


async def test_csp_refuses_inline_script(site: Site, tab: Tab) -> None:
    """An inline script in a page served with the policy does not run: the CSP is enforced."""
    await tab.page.goto(f"{site.url}/docs")
    ran = await tab.page.evaluate(
        """() => new Promise(resolve => {
             document.addEventListener('securitypolicyviolation', () => resolve('blocked'), {once: true});
             const script = document.createElement('script');
             script.textContent = 'window.__ran = true';
             document.body.appendChild(script);
             setTimeout(() => resolve(window.__ran ? 'ran' : 'blocked'), 1000);
           })"""
    )
    assert ran == "blocked"


async def test_static_files_served(site: Site) -> None:
    response = await site.client.get("/static/style.css")
    assert response.status == 200 and response.content_type == "text/css"
    assert "content-security-policy" not in response.headers  # only HTML responses carry it
