"""The account's pages over HTTP: the session cookie's attributes, sign-in (and what it refuses), every
page and form behind a session, every form behind its CSRF field, expiry and revocation."""

from __future__ import annotations

import re
import ssl
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from spsp_pull.api.app import build_app
from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.config import Config
from spsp_pull.server import running
from spsp_pull.tls import self_signed
from spsp_pull.web import csrf
from spsp_pull.web.app_session import COOKIE_NAME, SESSION_LIFETIME
from tests.api.serving import ADMIN_KEY
from tests.web.app_client import AppSite, csrf_field


def session_cookie(response: aiohttp.ClientResponse) -> str:
    headers = [h for h in response.headers.getall("Set-Cookie", []) if h.startswith(f"{COOKIE_NAME}=")]
    assert len(headers) == 1, response.headers
    return headers[0]


def attributes(set_cookie: str) -> dict[str, str]:
    parsed = SimpleCookie()
    parsed.load(set_cookie)
    morsel = parsed[COOKIE_NAME]
    return {name: str(value) for name, value in morsel.items() if value}


async def test_session_cookie_attributes(app_site: AppSite) -> None:
    response = await app_site.sign_in()
    assert response.headers["Location"] == "/app/"
    found = attributes(session_cookie(response))
    assert found["httponly"] is not None and "httponly" in found
    assert found["samesite"] == "Strict"
    assert found["path"] == "/app"
    assert found["max-age"] == str(int(SESSION_LIFETIME.total_seconds()))
    assert "secure" not in found  # plain HTTP: a Secure cookie would never come back


async def test_session_cookie_secure_under_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls", "localhost")
    config = Config(
        data_dir=tmp_path / "data", port=0, auth_token=ADMIN_KEY, tls_cert=cert, tls_key=key, btp_port=None
    )
    tls = ssl.create_default_context(cafile=str(cert))
    ilp = StaticIlpEndpoint("private.spsppull")
    async with (
        running(config, ilp=ilp, announce=lambda _line: None) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as client,
    ):
        base = f"https://localhost:{server.port}"
        async with client.get(f"{base}/app/sign-in") as page:
            token = csrf_field(await page.text())
        form = {"csrf": token, "api_key": ADMIN_KEY}
        async with client.post(f"{base}/app/sign-in", data=form, allow_redirects=False) as response:
            assert response.status == 303
            found = attributes(session_cookie(response))
        assert "secure" in found and found["samesite"] == "Strict" and "httponly" in found


async def test_wrong_or_missing_key_is_refused(app_site: AppSite) -> None:
    for key in ("not-a-key", " ", ""):
        response = await app_site.post("/app/sign-in", {"api_key": key}, csrf_from="/app/sign-in")
        assert response.status == 401
        assert "The API key is not valid." in await response.text()
        assert COOKIE_NAME not in response.cookies
    assert (await app_site.get("/app/")).status == 303


async def test_sign_in_needs_the_forms_csrf_field(app_site: AppSite) -> None:
    """Another site cannot sign a browser into an account (login CSRF)."""
    await app_site.page("/app/sign-in")  # the CSRF cookie is set, but the field is missing or wrong
    for form in ({"api_key": app_site.wallet_key}, {"api_key": app_site.wallet_key, "csrf": "0" * 64}):
        response = await app_site.post("/app/sign-in", form)
        assert response.status == 403
        assert COOKIE_NAME not in response.cookies


async def test_sign_in_returns_to_the_page_asked_for_never_elsewhere(app_site: AppSite) -> None:
    response = await app_site.get("/app/keys")
    assert response.status == 303
    location = URL(response.headers["Location"])
    assert (location.path, location.query["next"]) == ("/app/sign-in", "/app/keys")
    for wanted, lands in (
        ("/app/keys", "/app/keys"),
        ("https://evil.example/", "/app/"),
        ("//evil", "/app/"),
    ):
        app_site.forget_session()
        form = {"api_key": app_site.wallet_key, "next": wanted}
        response = await app_site.post("/app/sign-in", form, csrf_from="/app/sign-in")
        assert response.status == 303
        assert response.headers["Location"] == lands


async def test_every_page_and_form_needs_a_session(app_site: AppSite) -> None:
    """Each /app/ route of the application, found in its router (so a new one cannot be left out)."""
    token = await app_site.create_pointer()
    routes = [
        (route.method, route.resource.canonical)
        for route in app_site.client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/app/")
    ]
    assert len(routes) >= 20
    for method, path in routes:
        url = path.replace("{token}", token).replace("{id}", "1")
        if path == "/app/sign-in":
            continue
        if method == "GET":
            response = await app_site.get(url)
            assert response.status == 303, url
            assert response.headers["Location"].startswith("/app/sign-in?next="), url
        elif method == "POST":
            response = await app_site.client.post(url, data={"cycles": "1"}, allow_redirects=False)
            assert (response.status, response.headers.get("Location")) == (303, "/app/sign-in"), url
    pointer = await app_site.pointer(token)
    assert (pointer["state"], pointer["cycles"], pointer["version"]) == ("active", 12, 1)


async def test_every_form_needs_its_csrf_field(app_site: AppSite) -> None:
    token = await app_site.create_pointer()
    await app_site.sign_in()
    key_count = len((await (await app_site.client.get("/me/keys", headers=app_site.auth())).json())["items"])
    posts = [
        route.resource.canonical
        for route in app_site.client.app.router.routes()
        if route.method == "POST" and route.resource is not None
        if route.resource.canonical.startswith("/app/") and route.resource.canonical != "/app/sign-in"
    ]
    for path in posts:
        url = path.replace("{token}", token).replace("{id}", "1")
        for form in ({"cycles": "1"}, {"cycles": "1", "csrf": "f" * 64}):
            response = await app_site.client.post(url, data=form, allow_redirects=False)
            assert response.status == 403, url
            assert "Nothing was changed." in await response.text()
    pointer = await app_site.pointer(token)
    assert (pointer["state"], pointer["cycles"], pointer["version"]) == ("active", 12, 1)
    assert (
        len((await (await app_site.client.get("/me/keys", headers=app_site.auth())).json())["items"])
        == key_count
    )
    assert (await app_site.get("/app/")).status == 200  # still signed in: sign-out was refused too


async def test_session_expires(app_site: AppSite) -> None:
    await app_site.sign_in()
    app_site.clock.advance(SESSION_LIFETIME - timedelta(seconds=1))
    assert (await app_site.get("/app/")).status == 200
    app_site.clock.advance(timedelta(seconds=1))
    response = await app_site.get("/app/")
    assert response.status == 303 and response.headers["Location"].startswith("/app/sign-in")


async def test_revoking_the_key_ends_the_session(app_site: AppSite) -> None:
    await app_site.sign_in()
    assert (await app_site.get("/app/")).status == 200
    keys = await (await app_site.client.get("/me/keys", headers=app_site.auth())).json()
    live = [k for k in keys["items"] if k["revokedAt"] is None]
    assert len(live) == 1
    revoked = await app_site.client.delete(f"/me/keys/{live[0]['id']}", headers=app_site.auth())
    assert revoked.status == 200
    response = await app_site.get("/app/")
    assert response.status == 303 and response.headers["Location"].startswith("/app/sign-in")


async def test_altered_cookie_is_no_session(app_site: AppSite) -> None:
    response = await app_site.sign_in()
    value = SimpleCookie(session_cookie(response))[COOKIE_NAME].value
    payload, _, signature = value.rpartition(".")
    assert (await app_site.get("/app/")).status == 200
    for forged in (f"{payload}.{signature[::-1]}", f"{payload}x.{signature}", "garbage"):
        app_site.forget_session()
        app_site.client.session.cookie_jar.update_cookies({COOKIE_NAME: forged})
        assert (await app_site.get("/app/")).status == 303, forged
    app_site.forget_session()
    app_site.client.session.cookie_jar.update_cookies({COOKIE_NAME: value})  # the same way, unaltered
    assert (await app_site.get("/app/")).status == 200


async def test_sign_out_ends_the_session(app_site: AppSite) -> None:
    await app_site.sign_in()
    response = await app_site.post("/app/sign-out", {}, csrf_from="/app/")
    assert response.status == 303 and response.headers["Location"] == "/app/sign-in"
    assert re.search(r"Max-Age=0|expires=Thu, 01 Jan 1970", session_cookie(response), re.IGNORECASE)
    assert (await app_site.get("/app/")).status == 303


@pytest.mark.parametrize(
    ("field", "value"),
    [("cycles", "0"), ("amount", "ten"), ("assetCode", "U S D"), ("interval", "P1X"), ("webhook", "ftp://x")],
)
async def test_creation_form_shows_the_apis_message(app_site: AppSite, field: str, value: str) -> None:
    body = {**{k: str(v) for k, v in {**AGREEMENT_FORM, field: value}.items()}}
    api = await app_site.client.post("/", json=body, headers=app_site.auth())
    problem = await api.json()
    await app_site.sign_in()
    response = await app_site.post("/app/pointers", body, csrf_from="/app/pointers/new")
    assert response.status == 422
    text = await response.text()
    assert problem["code"] in text and _escaped(problem["detail"]) in text
    listed = await (await app_site.client.get("/pointers", headers=app_site.auth())).json()
    assert listed["items"] == []


AGREEMENT_FORM = {
    "amount": "1000",
    "assetCode": "USD",
    "assetScale": "2",
    "interval": "P1M",
    "cycles": "12",
    "cap": "false",
}


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")


async def test_another_accounts_pointer_is_not_found(app_site: AppSite) -> None:
    theirs = await app_site.create_pointer(key=app_site.other_key)
    await app_site.sign_in()
    for path in (
        f"/app/pointers/{theirs}",
        f"/app/pointers/{theirs}/cancel",
        f"/app/pointers/{theirs}/extend",
        "/app/pointers/no-such-token",
    ):
        assert (await app_site.get(path)).status == 404, path
    token = csrf_field(await app_site.page("/app/"))
    for action, form in (("extend", {"cycles": "1"}), ("cancel", {}), ("pause", {})):
        response = await app_site.post(f"/app/pointers/{theirs}/{action}", {**form, "csrf": token})
        assert response.status == 404, action
    pointer = await app_site.pointer(theirs, key=app_site.other_key)
    assert (pointer["state"], pointer["cycles"], pointer["version"]) == ("active", 12, 1)


async def test_a_form_rendered_by_one_instance_is_accepted_by_another(app_site: AppSite) -> None:
    """Instances on one database share the CSRF key, so a form from one (or from before a restart) is
    accepted by the next that receives it."""
    page = await app_site.get("/app/sign-in")
    token = csrf_field(await page.text())
    nonce = page.cookies[csrf.COOKIE].value
    async with TestClient(TestServer(build_app(app_site.context), host="127.0.0.1")) as second:
        response = await second.post(
            "/app/sign-in",
            data={"csrf": token, "api_key": app_site.wallet_key},
            headers={"Cookie": f"{csrf.COOKIE}={nonce}"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        assert COOKIE_NAME in response.cookies
