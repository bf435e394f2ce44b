"""Pull features against a real server process: exchange rates and webhooks after a pull."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import aiohttp
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from harness.server_process import ServerProcess
from spsp_pull.payee import pull, query
from tests.ilp.test_payee_cli import ADMIN, btp, create


async def test_pointer_in_another_asset_is_converted_down_and_debited_up(tmp_path: Path) -> None:
    env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_RATES": '{"USD/XRP": "2.5"}'}
    async with ServerProcess(tmp_path, env=env, embedded_btp=True) as server:
        token = await create(server, amount="100", assetCode="USD", assetScale=2)  # 1.00 USD = 2.5 XRP
        first = await pull(f"{server.url}/{token}", 1_000_000_001, btp_url=btp(server))
        assert first.complete  # 1.000000001 XRP
        details = await _settled(f"{server.url}/{token}")
        assert details["total"] == "41"  # 40.00000004 cents, rounded up
        rest = await pull(f"{server.url}/{token}", None, btp_url=btp(server, "other"))
        assert rest.amount == 1_475_000_000  # 59 cents of XRP, rounded down
        assert (await _settled(f"{server.url}/{token}"))["available"] == "0"


async def test_completed_pull_fires_the_webhook(tmp_path: Path, aiohttp_server: AiohttpServer) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        if request.headers["Webhook-Event"] == "pull.completed":
            arrived.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = await aiohttp_server(app, host="127.0.0.1")
    env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"}
    async with ServerProcess(tmp_path, env=env, embedded_btp=True) as server:
        token = await create(server, webhook=str(receiver.make_url("/hook")))
        outcome = await pull(f"{server.url}/{token}", 1000, btp_url=btp(server))
        assert outcome.complete
        await asyncio.wait_for(arrived.wait(), 10)
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{server.url}/me/webhook-secret", headers={"Authorization": f"Bearer {ADMIN}"}
            ) as response,
        ):
            secret = (await response.json())["webhookSecret"]
    [(headers, raw)] = [(h, r) for h, r in received if h["Webhook-Event"] == "pull.completed"]
    body = json.loads(raw)["data"]
    assert body["balanceTotal"] == "1000" and body["balanceInterval"] == "1000"
    assert str(body["pointer"]).endswith(f"/{token}")
    assert "Authorization" not in headers  # no bearer token shared by all accounts
    stamp, mac = (part.split("=", 1)[1] for part in headers["Webhook-Signature"].split(","))
    signed = f"{headers['Webhook-Id']}.{stamp}.".encode() + raw
    assert hmac.compare_digest(mac, hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())


async def _settled(url: str) -> dict[str, str]:
    for _ in range(50):
        balance = dict((await query(url)).pull["balance"])  # type: ignore[index]
        if balance["total"] == balance["interval"]:
            return balance
        await asyncio.sleep(0.05)
    return balance


async def test_a_long_pull_reserves_in_doubling_chunks_and_settles_each_in_the_ledger(tmp_path: Path) -> None:
    """1,000 packets of 1,000: grants of 64, 128, 256 and 512 packets (the cap), then what is left; each
    used-up grant settled in full with the next reservation, the last with the end of the pull."""
    env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_MAX_PACKET_AMOUNT": "1000"}
    async with ServerProcess(tmp_path, env=env, embedded_btp=True) as server:
        token = await create(server, amount="5000000")
        outcome = await pull(f"{server.url}/{token}", 1_000_000, btp_url=btp(server), max_in_flight=4)
        assert outcome.complete
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{server.url}/pointers/{token}", headers={"Authorization": f"Bearer {ADMIN}"}
            ) as response,
        ):
            detail = await response.json()
    ledger = sorted(detail["pulls"], key=lambda p: int(p["id"]))
    assert [int(p["amount"]) for p in ledger] == [64_000, 128_000, 256_000, 512_000, 40_000]
    assert detail["balanceTotal"] == "1000000"
