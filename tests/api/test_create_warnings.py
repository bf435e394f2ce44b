"""Creating a pointer that cannot be pulled over ILP for want of a rate says so (`warnings`, code `no-rate`),
and the pointer is created all the same; the CLI prints the warning on stderr; the OpenAPI document lists it.

A real server process (embedded ILP endpoint, XRP scale 9) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from harness.server_process import XRP_AGREEMENT, ServerProcess, run_cli
from tests.ilp.hostile.databases import process_database

ADMIN = "create-warnings-admin"
NO_RATE = {
    "code": "no-rate",
    "detail": "no rate from USD to XRP: pulls over ILP will be refused; payouts may still serve it",
}
USD = {**XRP_AGREEMENT, "assetCode": "USD", "assetScale": 2}


@asynccontextmanager
async def serving(backend: str, tmp_path: Path, **env: str) -> AsyncIterator[ServerProcess]:
    data_dir = tmp_path / "server"
    async with process_database(backend, data_dir) as url:
        settings = {"SPSP_AUTH_TOKEN": ADMIN, **({"SPSP_DATABASE_URL": url} if url else {}), **env}
        async with ServerProcess(data_dir, env=settings, embedded_btp=True) as server:
            yield server


async def request(server: ServerProcess, method: str, path: str, body: object = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{server.url}{path}", json=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_a_pointer_without_a_rate_is_created_with_a_no_rate_warning(
    backend: str, tmp_path: Path
) -> None:
    async with serving(backend, tmp_path) as server:
        status, created = await request(server, "POST", "/", USD)
        assert status == 201, created
        assert created["warnings"] == [NO_RATE]
        assert (created["assetCode"], created["state"]) == ("USD", "active")
        status, shown = await request(server, "GET", f"/pointers/{created['token']}")
        assert (status, shown["assetCode"], shown["balanceAvailable"]) == (200, "USD", "5000")
        status, same_asset = await request(server, "POST", "/", XRP_AGREEMENT)
        assert (status, same_asset["warnings"]) == (201, [])


async def test_a_configured_rate_makes_no_warning(backend: str, tmp_path: Path) -> None:
    async with serving(backend, tmp_path, SPSP_RATES='{"USD/XRP": "2.5"}') as server:
        status, created = await request(server, "POST", "/", USD)
        assert (status, created["warnings"]) == (201, [])
        status, euro = await request(server, "POST", "/", {**USD, "assetCode": "EUR"})
        assert status == 201
        assert euro["warnings"] == [{**NO_RATE, "detail": NO_RATE["detail"].replace("from USD", "from EUR")}]


async def test_the_cli_prints_the_warning_on_stderr_and_the_pointer_on_stdout(
    backend: str, tmp_path: Path
) -> None:
    async with serving(backend, tmp_path) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPSP_")}
        env |= {"SPSP_SERVER": server.url, "SPSP_API_KEY": ADMIN}
        terms = ["--amount", "2500", "--interval", "P1M", "--cycles", "12"]
        code, out, err = await run_cli(
            "create", *terms, "--asset-code", "USD", "--asset-scale", "2", "--output", "pointer", env=env
        )
        assert code == 0, err
        assert err == f"warning: no-rate: {NO_RATE['detail']}\n"
        token = out.strip().rsplit("/", 1)[1]
        status, shown = await request(server, "GET", f"/pointers/{token}")
        assert (status, shown["assetCode"]) == (200, "USD")
        code, out, err = await run_cli(
            "create", *terms, "--asset-code", "XRP", "--asset-scale", "9", "--output", "pointer", env=env
        )
        assert (code, err) == (0, "")


async def test_the_openapi_document_lists_the_warnings_of_a_create(tmp_path: Path) -> None:
    async with serving("sqlite", tmp_path) as server:
        status, document = await request(server, "GET", "/openapi.json")
    assert status == 200
    created = document["paths"]["/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/CreatedPointer"}
    [pointer, extra] = document["components"]["schemas"]["CreatedPointer"]["allOf"]
    assert pointer == {"$ref": "#/components/schemas/Pointer"}
    assert extra["required"] == ["warnings"]
    warning = extra["properties"]["warnings"]["items"]
    assert warning["required"] == ["code", "detail"]
    assert warning["properties"]["code"]["enum"] == ["no-rate"]
