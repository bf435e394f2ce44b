"""`spsp-pull payouts …` against the API served on 127.0.0.1 (the commands run in a thread, as the CLI
runs its own event loop)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from spsp_pull.bridge.network import Network
from spsp_pull.bridge.service import Bridge
from spsp_pull.cli import CliError
from spsp_pull.cli_payouts import add_payout_cli
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.api_harness import PayoutApi, serve
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "cli")


def parser() -> argparse.ArgumentParser:
    """What `spsp_pull.cli.build_parser` does with its `client` factory."""
    top = argparse.ArgumentParser(prog="spsp-pull")
    sub = top.add_subparsers(required=True)

    def client(name: str, help_text: str, command: Any) -> argparse.ArgumentParser:
        made = sub.add_parser(name, help=help_text)
        made.add_argument("--server", default="http://127.0.0.1:6000")
        made.add_argument("--api-key", default=None)
        made.set_defaults(command=command)
        return made

    add_payout_cli(sub, client)
    return top


@pytest.fixture
async def api(db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind) -> AsyncIterator[PayoutApi]:
    bitcoind.fund(10_000_000)
    async with (
        harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge,
        serve(db, bridge_clock, bridge) as served,
    ):
        yield served


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    args = parser().parse_args(list(argv))
    assert await asyncio.to_thread(args.command, args) == 0
    return json.loads(capsys.readouterr().out)


async def test_payouts_commands(api: PayoutApi, capsys: pytest.CaptureFixture[str]) -> None:
    token = await api.pointer()
    server = str(api.client.make_url("/")).rstrip("/")
    owner = ["--server", server, "--api-key", api.wallet_key]
    created = await run(
        capsys, "payouts", *owner, "create", token, ADDRESS, "--price-amount", "1000", "--comment", "hi"
    )
    assert created["status"] == "NEW" and created["comment"] == "hi"
    payout_id = created["payoutId"]
    approved = await run(capsys, "payouts", "approve", token, payout_id, *owner)
    assert approved["status"] == "QUEUED"
    listed = await run(capsys, "payouts", *owner, "list", token, "--status", "QUEUED")
    assert [p["payoutId"] for p in listed["items"]] == [payout_id]
    bridge = api.context.bridge
    assert isinstance(bridge, Bridge)
    await bridge.run_batch()
    shown = await run(capsys, "payouts", *owner, "show", token, payout_id)
    assert shown["status"] == "SENT"
    events = await run(capsys, "payouts", *owner, "events", token, payout_id)
    assert events["items"][0]["kind"] == "created"
    limits = await run(
        capsys, "payouts", "--as-payee", "--server", server, "limits", token, "--currency", "SAT"
    )
    assert limits["currency"] == "SAT"
    payee = await run(
        capsys,
        "payouts",
        "--server",
        server,
        "--as-payee",
        "create",
        token,
        ADDRESS,
        "--transfer-amount",
        "0.0001",
    )
    assert payee["createdBy"] == "payee"
    cancelled = await run(
        capsys, "payouts", "cancel", token, payee["payoutId"], "--as-payee", "--server", server
    )
    assert cancelled["status"] == "CANCELLED"


async def test_errors_are_one_line(api: PayoutApi) -> None:
    token = await api.pointer()
    server = str(api.client.make_url("/")).rstrip("/")
    args = parser().parse_args(
        ["payouts", "--server", server, "--api-key", api.other_key, "show", token, "x"]
    )
    with pytest.raises(CliError, match="404 pointer-not-found"):
        await asyncio.to_thread(args.command, args)
