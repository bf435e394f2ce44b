"""The payee's side against a real server process: `spsp-pull pull`, `send` and `subscribe`."""

from __future__ import annotations

import argparse
import json
import os
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.server_process import SPSP_PULL, ServerProcess, create_pointer, run_cli
from spsp_pull.cli_arguments import seconds
from spsp_pull.cli_errors import ExitStatus
from spsp_pull.payee import pull
from spsp_pull.store.database import Database, sqlite_url
from spsp_pull.store.push_payments import push_count, push_total
from spsp_pull.tls import self_signed

ADMIN = "payee-admin"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path / "server", env={"SPSP_AUTH_TOKEN": ADMIN}, embedded_btp=True) as s:
        yield s


def btp(server: ServerProcess, user: str = "payee") -> str:
    return f"btp+ws://{user}:secret-{user}@127.0.0.1:{server.btp_port}"


async def create(server: ServerProcess, **fields: Any) -> str:
    return await create_pointer(server, ADMIN, **{"amount": "2500", **fields})


async def test_pull_everything_asked(server: ServerProcess) -> None:
    token = await create(server)
    status, out, err = await run_cli(
        "pull", f"{server.url}/{token}", "--amount", "1500", "--btp", btp(server)
    )
    assert status == 0, err
    assert out.strip() == "received 1500 of 1500 (complete)"
    assert "1500/1500" in err  # the progress bar


async def test_pull_more_than_available_reports_why_it_stopped(server: ServerProcess) -> None:
    token = await create(server)
    status, out, _ = await run_cli(
        "pull", f"{server.url}/{token}", "--amount", "4000", "--btp", btp(server), "--window", "4"
    )
    assert status == ExitStatus.PARTIAL
    assert out.startswith("received 2500 of 4000 (the server ended the stream: Pull limit reached")


async def test_pull_without_amount_takes_all_available(server: ServerProcess) -> None:
    token = await create(server, amount="7777")
    status, out, _ = await run_cli("pull", f"{server.url}/{token}", "--btp", btp(server), "--quiet")
    assert status == 0
    assert out.startswith("received 7777 (")


async def test_unknown_pointer(server: ServerProcess) -> None:
    status, _, err = await run_cli("pull", f"{server.url}/nope", "--amount", "1", "--btp", btp(server))
    assert status == ExitStatus.NOT_FOUND and "404 InvalidPointerError: Pointer does not exist." in err


async def test_push_payment_is_received_and_recorded(server: ServerProcess) -> None:
    status, out, err = await run_cli(
        "send", f"{server.url}/.well-known/pay", "--amount", "5000", "--btp", btp(server)
    )
    assert status == 0, err
    assert out.strip() == "sent 5000 of 5000 (complete)"
    db = Database(sqlite_url(server.data_dir / "spsp-pull.sqlite3"))
    try:
        for _ in range(50):
            if await push_count(db):
                break
            import asyncio

            await asyncio.sleep(0.1)
        assert await push_total(db) == 5000
    finally:
        await db.close()


async def test_subscription_pulls_once_per_cycle_across_restarts(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = await create(server, amount="100", interval="PT2S", cycles=4, cap=True)
    state = tmp_path / "subscription.json"
    pointer = f"{server.url}/{token}"
    args = ("subscribe", pointer, "--amount", "100", "--state", str(state), "--btp", btp(server))
    status, _, err = await run_cli(*args, "--cycles", "2")
    assert status == 0, err
    first = json.loads(state.read_text())
    cycles = [p["cycle"] for p in first["pulls"]]
    assert len(cycles) == 2 and cycles[1] == cycles[0] + 1
    status, _, err = await run_cli(*args, "--cycles", "1")  # restarted: continues with the next cycle
    assert status == 0, err
    after = [p["cycle"] for p in json.loads(state.read_text())["pulls"]]
    assert after[:2] == cycles and after[2] == cycles[1] + 1
    assert all(p["amount"] == "100" for p in json.loads(state.read_text())["pulls"])


def test_timeouts_on_the_command_line_are_exact_seconds() -> None:
    assert seconds("1.5") == timedelta(milliseconds=1500)
    assert seconds("0.000001") == timedelta(microseconds=1)
    assert seconds("60") == timedelta(minutes=1)
    for bad in ("0", "-1", "nan", "inf", "abc", "1e30", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            seconds(bad)


async def test_the_printed_pointer_works_as_printed(server: ServerProcess) -> None:
    """`$localhost:<port>/<token>`, as the default server prints it, with the CLI and the Python payee."""
    env = {**os.environ, "SPSP_SERVER": server.url, "SPSP_API_KEY": ADMIN}
    create_args = ("--asset-code", "XRP", "--asset-scale", "9", "--interval", "P1D", "--cycles", "1")
    status, out, err = await run_cli(
        "create", "--amount", "300", *create_args, "--output", "pointer", env=env
    )
    assert status == 0, err
    pointer = out.strip()
    assert pointer.startswith(f"$localhost:{server.port}/")
    status, out, err = await run_cli("query", pointer, env=env)
    assert status == 0, err
    assert json.loads(out)["pull"]["balance"]["available"] == "300"
    status, out, err = await run_cli("pull", pointer, "--amount", "100", "--btp", btp(server), env=env)
    assert (status, out.strip()) == (0, "received 100 of 100 (complete)"), err
    outcome = await pull(pointer, 200, btp_url=btp(server, "python-payee"))
    assert (outcome.amount, outcome.reason) == (200, "complete")


async def test_https_with_tls_self_signed_needs_no_ssl_cert_file(tmp_path: Path) -> None:
    """The CLI trusts the certificate `serve --tls-self-signed` keeps in the data directory, and the
    `$localhost` pointer it prints, asked over http first, is found over https."""
    data_dir = tmp_path / "data"
    probe = ServerProcess(data_dir)  # for its free port: the certificate names the public host
    cert, _ = self_signed(data_dir, f"localhost:{probe.port}")
    server = ServerProcess(
        data_dir, env={"SPSP_AUTH_TOKEN": ADMIN}, command=(*SPSP_PULL, "serve", "--tls-self-signed")
    )
    server.port = probe.port
    server.scheme = "https"
    server.ssl_context = ssl.create_default_context(cafile=str(cert))
    async with server:
        env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
        env |= {"SPSP_DATA_DIR": str(data_dir), "SPSP_SERVER": server.url, "SPSP_API_KEY": ADMIN}
        terms = ("--asset-code", "XRP", "--asset-scale", "9", "--interval", "P1D", "--cycles", "1")
        status, out, err = await run_cli("create", "--amount", "700", *terms, "--output", "pointer", env=env)
        assert status == 0, err
        pointer = out.strip()
        assert pointer.startswith(f"$localhost:{server.port}/")
        token = pointer.rsplit("/", 1)[1]
        status, out, err = await run_cli("query", pointer, env=env)  # as printed: found over https
        assert status == 0, err
        status, out, err = await run_cli("query", f"{server.url}/{token}", env=env)
        assert status == 0, err
        assert json.loads(out)["pull"]["balance"]["available"] == "700"
        status, out, err = await run_cli("show", token, env=env)
        assert status == 0, err
        # Without the data directory the certificate is not trusted: a one-line network error.
        status, _, err = await run_cli(
            "query", f"{server.url}/{token}", env={**env, "SPSP_DATA_DIR": "/nonexistent"}
        )
        assert status == ExitStatus.NETWORK and "certificate verify failed" in err, err
