"""The README's webhook receiver, read out of README.md and run as written: a real server's pulls are
delivered to it (through a recording relay on loopback) and accepted; the same messages tampered with are
refused. Each announcement names its pull and what it debited, as the pointer's ledger does."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from harness.server_process import ServerProcess, free_port
from spsp_pull.api.openapi import openapi_document
from spsp_pull.payee import pull
from tests.ilp.test_payee_cli import ADMIN, btp, create

ROOT = Path(__file__).resolve().parents[1]


def readme_receiver() -> str:
    section = (ROOT / "README.md").read_text().split("\n### Webhooks and payout notifications\n", 1)[1]
    return section.split("\n```python\n", 1)[1].split("\n```", 1)[0]


def test_the_readme_receiver_is_short() -> None:
    code = readme_receiver()
    assert "HTTPServer(" in code and "compare_digest" in code
    assert len([line for line in code.splitlines() if line.strip()]) <= 17


class Relay:
    """Forwards each delivery to the receiver untouched, keeping what was sent and what it answered."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.deliveries: asyncio.Queue[tuple[dict[str, str], bytes, int]] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name: request.headers[name] for name in ("Webhook-Id", "Webhook-Signature")}
        status = await self.send(headers, body)
        await self.deliveries.put((headers, body, status))
        return web.Response(status=status)

    async def send(self, headers: dict[str, str], body: bytes) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.target, data=body, headers={**headers, "Content-Type": "application/json"}) as r,
        ):
            return r.status

    async def next(self) -> tuple[dict[str, str], bytes, int]:
        return await asyncio.wait_for(self.deliveries.get(), 20)


async def listening(port: int, process: asyncio.subprocess.Process) -> None:
    """Until the receiver accepts connections (it binds before it serves), or it died."""
    for _ in range(200):
        assert process.returncode is None, "the README receiver exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("the README receiver never listened")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = {
        "SPSP_AUTH_TOKEN": ADMIN,
        "SPSP_WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
        "SPSP_MAX_PACKET_AMOUNT": "1000",  # a pull of 300,000 takes several reservations
    }
    async with ServerProcess(tmp_path / "server", env=env, embedded_btp=True) as process:
        yield process


async def get(server: ServerProcess, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {ADMIN}"}) as response,
    ):
        assert response.status == 200
        return await response.json()


async def test_the_readme_receiver_accepts_real_deliveries_and_refuses_tampered_ones(
    tmp_path: Path, server: ServerProcess, aiohttp_server: AiohttpServer
) -> None:
    secret = (await get(server, "/me/webhook-secret"))["webhookSecret"]
    script = tmp_path / "receiver.py"
    script.write_text(readme_receiver())
    port = free_port()
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env={"WEBHOOK_SECRET": secret, "PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await listening(port, receiver)
        assert receiver.stdout is not None
        relay = Relay(f"http://127.0.0.1:{port}/hook")
        app = web.Application()
        app.router.add_post("/hook", relay.handle)
        front = await aiohttp_server(app, host="127.0.0.1")

        token = await create(server, amount="1000000", webhook=str(front.make_url("/hook")))
        _, raw_created, status_created = await relay.next()
        assert status_created == 204 and json.loads(raw_created)["type"] == "pointer.created"
        assert json.loads(await asyncio.wait_for(receiver.stdout.readline(), 10)) == json.loads(raw_created)
        assert (await pull(f"{server.url}/{token}", 300_000, btp_url=btp(server))).complete
        headers, raw, status = await relay.next()
        assert status == 204
        printed = await asyncio.wait_for(receiver.stdout.readline(), 10)
        assert json.loads(printed) == json.loads(raw)
        event = json.loads(raw)
        assert (event["id"], event["type"]) == (headers["Webhook-Id"], "pull.completed")
        first = event["data"]
        assert (first["pullAmount"], first["balanceTotal"], first["balanceInterval"]) == ("300000",) * 3
        assert str(first["pointer"]).endswith(f"/{token}")
        assert {name: event[name] for name in first} == first  # the former body, still at the top level
        documented = openapi_document()["components"]["schemas"]["PullCompleted"]
        assert set(documented["required"]) <= event.keys() <= documented["properties"].keys()

        assert (await pull(f"{server.url}/{token}", 50_000, btp_url=btp(server))).complete
        _, raw_second, status_second = await relay.next()
        second = json.loads(raw_second)["data"]
        assert status_second == 204
        assert (second["pullAmount"], second["balanceTotal"]) == ("50000", "350000")

        # Each pullId names its pull in the ledger: the reservation of its first entry, whose entries
        # (one per reservation) add up to the pull's amount.
        ledger = sorted((await get(server, f"/pointers/{token}"))["pulls"], key=lambda p: int(p["id"]))
        assert len(ledger) > 2  # the first pull took several reservations
        assert ledger[0]["reservationId"] == int(first["pullId"])
        split = next(i for i, entry in enumerate(ledger) if entry["reservationId"] == int(second["pullId"]))
        assert split > 0
        assert sum(int(p["amount"]) for p in ledger[:split]) == 300_000
        assert sum(int(p["amount"]) for p in ledger[split:]) == 50_000

        # The real delivery, once more: still accepted; tampered body or signature: refused.
        assert await relay.send(headers, raw) == 204
        tampered = json.dumps({**event, "data": {**first, "pullAmount": "999999"}}).encode()
        assert await relay.send(headers, tampered) == 401
        mac = headers["Webhook-Signature"].rsplit("=", 1)[1]
        forged = headers["Webhook-Signature"][: -len(mac)] + ("0" if mac[0] != "0" else "1") + mac[1:]
        assert await relay.send({**headers, "Webhook-Signature": forged}, raw) == 401
        assert await relay.send({**headers, "Webhook-Id": "other"}, raw) == 401
    finally:
        receiver.terminate()
        await receiver.wait()
