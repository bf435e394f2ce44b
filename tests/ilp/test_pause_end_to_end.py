"""Pause and resume on a real server process (SQLite and PostgreSQL) with its embedded BTP endpoint: the CLI
pauses, a real pull gets nothing and is told why, the CLI resumes, the same pull succeeds; every step is an
event delivered, signed, to a webhook receiver on loopback, and the pull that uses 80 % of the cycle warns
once (allowance.low)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from harness.server_process import ServerProcess, create_pointer, run_cli
from spsp_pull.payee import pull
from tests.ilp.hostile.databases import process_database
from tests.test_server_process import cli_env

ADMIN = "pause-admin-key"
EVENTS = ["pointer.created", "pointer.paused", "pointer.resumed", "pull.completed", "allowance.low"]


class Receiver:
    def __init__(self) -> None:
        self.deliveries: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        await self.deliveries.put((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def next(self) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.deliveries.get(), 20)


def signed_by(headers: dict[str, str], body: bytes, secret: str) -> bool:
    parts = dict(part.split("=", 1) for part in headers["Webhook-Signature"].split(","))
    signed = f"{headers['Webhook-Id']}.{parts['t']}.".encode() + body
    return hmac.compare_digest(parts["v1"], hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())


async def get(server: ServerProcess, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {ADMIN}"}) as response,
    ):
        assert response.status == 200
        return await response.json()


async def test_a_paused_pointer_refuses_a_real_pull_and_serves_it_after_resume(
    backend: str, tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    hooks = await aiohttp_server(app, host="127.0.0.1")
    data_dir = tmp_path / "data"
    async with process_database(backend, data_dir) as url:
        env = {
            "SPSP_AUTH_TOKEN": ADMIN,
            "SPSP_WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
            **({"SPSP_DATABASE_URL": url} if url else {}),
        }
        async with ServerProcess(data_dir, env=env, embedded_btp=True) as server:
            btp = f"btp+ws://payee:secret-payee@127.0.0.1:{server.btp_port}"
            token = await create_pointer(server, ADMIN, amount="1000", webhook=str(hooks.make_url("/hook")))
            cli = cli_env(server, ADMIN)

            status, out, err = await run_cli("pause", token, env=cli)
            assert status == 0, err
            assert (json.loads(out)["state"], json.loads(out)["balanceAvailable"]) == ("paused", "0")
            refused = await pull(f"{server.url}/{token}", 500, btp_url=btp)
            assert (refused.amount, refused.reason) == (0, "closed-by-server")
            assert refused.detail == "paused: the payer paused this pointer until the payer resumes it"

            status, out, err = await run_cli("resume", token, env=cli)
            assert status == 0, err
            assert (json.loads(out)["state"], json.loads(out)["balanceAvailable"]) == ("active", "1000")
            served = await pull(f"{server.url}/{token}", 900, btp_url=btp)
            assert served.complete and served.amount == 900

            shown = await get(server, f"/pointers/{token}")
            assert [v["reason"] for v in shown["versions"]] == ["created", "paused", "resumed"]
            secret = (await get(server, "/me/webhook-secret"))["webhookSecret"]
            delivered = [await receiver.next() for _ in EVENTS]
            await server.assert_audit_clean()
    bodies = {}
    for headers, raw in delivered:
        body = json.loads(raw)
        assert signed_by(headers, raw, secret) and not signed_by(headers, raw, "another secret")
        assert (body["id"], body["type"]) == (headers["Webhook-Id"], headers["Webhook-Event"])
        assert {"id", "type", "createdAt", "data"} <= body.keys()
        bodies[body["type"]] = body
    assert sorted(bodies) == sorted(EVENTS)
    assert bodies["pointer.paused"]["data"]["state"] == "paused"
    assert bodies["pointer.resumed"]["data"]["state"] == "active"
    assert bodies["pull.completed"]["data"]["pullAmount"] == "900"
    assert bodies["pull.completed"]["pullAmount"] == "900"  # the former body's fields, still at the top
    low = bodies["allowance.low"]["data"]
    assert (low["token"], low["cycle"], low["used"], low["available"]) == (token, 1, "900", "100")
    assert receiver.deliveries.empty()
