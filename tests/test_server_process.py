"""The real `spsp-pull serve` process and the CLI against it, as an operator would use them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import aiohttp

from harness.server_process import ServerProcess, run_cli


def cli_env(server: ServerProcess, key: str) -> dict[str, str]:
    return {**os.environ, "SPSP_SERVER": server.url, "SPSP_API_KEY": key}


async def test_first_start_generates_and_keeps_the_admin_key(tmp_path: Path) -> None:
    async with ServerProcess(tmp_path) as server:
        token = (tmp_path / "auth-token").read_text().strip()
        assert token in server.output.decode()
        assert (tmp_path / "spsp-pull.sqlite3").exists()
    async with ServerProcess(tmp_path) as server:
        assert token not in server.output.decode()  # printed once only
        assert (tmp_path / "auth-token").read_text().strip() == token


async def test_cli_manages_pointers_on_a_running_server(tmp_path: Path) -> None:
    async with ServerProcess(
        tmp_path, env={"SPSP_AUTH_TOKEN": "admin-secret", "SPSP_HOST": "pull.example"}
    ) as s:
        status, out, err = await run_cli("accounts", "create", "shop", env=cli_env(s, "admin-secret"))
        assert status == 0, err
        shop_key = json.loads(out)["apiKey"]
        env = cli_env(s, shop_key)
        status, out, err = await run_cli(
            "create",
            "--amount",
            "1000",
            "--asset-code",
            "USD",
            "--asset-scale",
            "2",
            "--interval",
            "P1M",
            "--cycles",
            "12",
            env=env,
        )
        assert status == 0, err
        created = json.loads(out)
        assert created["pointer"].startswith("$pull.example/")
        status, out, err = await run_cli("query", f"{s.url}/{created['token']}", env=env)
        assert status == 0, err
        assert json.loads(out)["pull"]["balance"]["available"] == "1000"
        status, out, err = await run_cli("update", created["token"], "--cycles", "24", env=env)
        assert status == 0 and json.loads(out)["cycles"] == 24, err
        status, out, err = await run_cli("cancel", created["token"], env=env)
        assert status == 0 and json.loads(out)["state"] == "cancelled", err
        status, out, err = await run_cli("show", created["token"], env=env)
        assert [v["reason"] for v in json.loads(out)["versions"]] == ["created", "updated", "cancelled"]
        status, out, err = await run_cli(
            "update", created["token"], "--cycles", "2", env=cli_env(s, "admin-secret")
        )
        assert status == 5 and "404 pointer-not-found" in err  # ExitStatus.NOT_FOUND
        status, out, err = await run_cli(
            "create",
            "--amount",
            "0",
            "--asset-code",
            "USD",
            "--asset-scale",
            "2",
            "--interval",
            "P1M",
            "--cycles",
            "1",
            env=env,
        )
        assert status == 1 and "amount-out-of-range" in err


async def test_sigterm_stops_cleanly_and_data_survives_restart(tmp_path: Path) -> None:
    env = {"SPSP_AUTH_TOKEN": "admin-secret"}
    async with ServerProcess(tmp_path, env=env) as server:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{server.url}/",
                json={
                    "amount": "5",
                    "assetCode": "XRP",
                    "assetScale": 9,
                    "interval": "P1D",
                    "cycles": 3,
                    "cap": True,
                },
                headers={"Authorization": "Bearer admin-secret"},
            ) as response,
        ):
            token = (await response.json())["token"]
        assert await server.stop(signal.SIGTERM) == 0
    async with (
        ServerProcess(tmp_path, env=env) as server,
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/{token}") as response,
    ):
        assert response.status == 200
        assert (await response.json(content_type=None))["pull"]["agreement"]["amount"] == "5"


async def test_cli_makes_an_offline_pointer_the_server_accepts(tmp_path: Path) -> None:
    env = {"SPSP_AUTH_TOKEN": "admin-secret", "SPSP_JWT_SECRET": "shared-with-the-wallet-32-bytes-long"}
    async with ServerProcess(tmp_path, env=env) as server:
        status, out, err = await run_cli(
            "jwt",
            "--secret",
            "shared-with-the-wallet-32-bytes-long",
            "--amount",
            "700",
            "--asset-code",
            "EUR",
            "--asset-scale",
            "2",
            "--interval",
            "P1W",
            "--cycles",
            "4",
            "--jti",
            "bar-tab-9",
            "--host",
            "pull.example",
        )
        assert status == 0, err
        pointer = out.strip()
        assert pointer.startswith("$pull.example/")
        jwt_token = pointer.split("/", 1)[1]
        status, out, err = await run_cli("query", f"{server.url}/{jwt_token}")
        assert status == 0, err
        agreement = json.loads(out)["pull"]["agreement"]
        assert agreement["amount"] == "700" and agreement["interval"] in ("P1W", "P7D")


async def test_https_with_a_certificate(tmp_path: Path) -> None:
    import ssl

    from spsp_pull.tls import self_signed

    cert, key = self_signed(tmp_path / "tls", "localhost")
    env = {"SPSP_AUTH_TOKEN": "admin-secret", "SPSP_TLS_CERT": str(cert), "SPSP_TLS_KEY": str(key)}
    server = ServerProcess(tmp_path / "data", env=env)
    server.scheme = "https"
    server.ssl_context = ssl.create_default_context(cafile=str(cert))
    async with (
        server,
        aiohttp.ClientSession() as session,
        session.post(
            f"https://localhost:{server.port}/",
            json={
                "amount": "5",
                "assetCode": "XRP",
                "assetScale": 9,
                "interval": "P1D",
                "cycles": 1,
                "cap": True,
            },
            headers={"Authorization": "Bearer admin-secret"},
            ssl=server.ssl_context,
        ) as response,
    ):
        assert response.status == 201
        assert (await response.json())["url"].startswith("https://")
