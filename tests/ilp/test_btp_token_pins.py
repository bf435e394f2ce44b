"""The embedded BTP endpoint's token pins, over real sockets on a SQLite file and on PostgreSQL: a name's
first token stays the only one across a restart of the server, concurrent first logins with different
tokens leave exactly one connected, and a full pin table refuses new names with a clear BTP error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from spsp_pull.config import Config
from spsp_pull.domain.clock import ManualClock
from spsp_pull.ilp.node import EmbeddedNode
from spsp_pull.server import running
from stream.aio.btp_client import BtpAuthError, BtpClient
from tests.ilp.hostile.databases import process_database


@asynccontextmanager
async def btp_server(config: Config, clock: ManualClock) -> AsyncIterator[int]:
    """A running server; yields its BTP port."""
    async with running(config, clock=clock, announce=lambda _line: None) as server:
        assert isinstance(server.node, EmbeddedNode)
        yield server.node.btp_port


def url(port: int, name: str, token: str) -> str:
    return f"btp+ws://{name}:{token}@127.0.0.1:{port}"


async def logs_in(port: int, name: str, token: str) -> bool:
    """Whether the server accepts `token` for `name` (it may refuse it only as the wrong token)."""
    try:
        async with BtpClient(url(port, name, token), reconnect=False) as client:
            await client.ildcp()
            refusal = ""
    except BtpAuthError as refused:
        refusal = str(refused)
    if refusal:
        assert "incorrect token for account" in refusal
    return not refusal


def config_for(data_dir: Path, database_url: str, **overrides: object) -> Config:
    return Config(
        data_dir=data_dir,
        database_url=database_url or None,
        port=0,
        btp_port=0,
        auth_token="admin-key",
        **overrides,  # type: ignore[arg-type]
    )


async def test_a_pinned_token_survives_a_restart_of_the_server(
    backend: str, tmp_path: Path, clock: ManualClock
) -> None:
    data_dir = tmp_path / "data"
    async with process_database(backend, data_dir) as database_url:
        config = config_for(data_dir, database_url)
        async with btp_server(config, clock) as port:
            assert await logs_in(port, "alice", "alice-token")
        async with btp_server(config, clock) as port:
            assert not await logs_in(port, "alice", "mallory-token")
            assert await logs_in(port, "alice", "alice-token")


async def test_of_concurrent_first_logins_with_different_tokens_one_wins(
    backend: str, tmp_path: Path, clock: ManualClock
) -> None:
    data_dir = tmp_path / "data"
    tokens = [f"token-{number}" for number in range(6)]
    async with (
        process_database(backend, data_dir) as database_url,
        btp_server(config_for(data_dir, database_url), clock) as port,
    ):
        accepted = await asyncio.gather(*(logs_in(port, "alice", token) for token in tokens))
        assert accepted.count(True) == 1
        winner = tokens[accepted.index(True)]
        assert await logs_in(port, "alice", winner)
        assert not await logs_in(port, "alice", next(t for t in tokens if t != winner))


async def test_a_full_pin_table_refuses_new_names_and_keeps_serving_pinned_ones(
    backend: str, tmp_path: Path, clock: ManualClock
) -> None:
    data_dir = tmp_path / "data"
    async with (
        process_database(backend, data_dir) as database_url,
        btp_server(config_for(data_dir, database_url, btp_max_accounts=1), clock) as port,
    ):
        assert await logs_in(port, "alice", "alice-token")
        with pytest.raises(BtpAuthError, match="no new accounts"):
            await BtpClient(url(port, "bob", "bob-token"), reconnect=False).connect()
        assert await logs_in(port, "alice", "alice-token")
