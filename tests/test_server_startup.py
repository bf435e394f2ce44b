"""A server whose start-up fails part-way leaves nothing behind: no listening socket, no background task,
no open database file. And a started one releases the same on `stop()`."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spsp_pull.bridge.backends.bitcoind import BitcoindConfig
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.config import Config
from spsp_pull.config_error import ConfigError
from spsp_pull.domain.clock import ManualClock
from spsp_pull.server import start_server
from spsp_pull.store.accounts import ensure_admin, list_keys, revoke_key
from spsp_pull.store.database import Database

NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)


@contextmanager
def listening() -> Iterator[int]:
    """A loopback port held by a listening socket of the test."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def can_listen(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def open_files_under(directory: Path) -> list[str]:
    """The files under `directory` this process holds open (SQLite's database, WAL and shm files)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory.resolve())):
            found.append(target)
    return found


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


def config_for(data_dir: Path, *, port: int, btp_port: int, bridge: BridgeSettings | None = None) -> Config:
    return Config(
        data_dir=data_dir,
        bind="127.0.0.1",
        port=port,
        auth_token="sk_admin_startup-test-key",
        btp_port=btp_port,
        btp_bind="127.0.0.1",
        audit_interval=None,
        bridge=bridge,
    )


def unreachable_bridge() -> BridgeSettings:
    """A payout bridge whose bitcoind does not answer: it starts (not ready) with its workers running."""
    return BridgeSettings(bitcoind=BitcoindConfig.from_url(f"http://user:pass@127.0.0.1:{closed_port()}"))


async def test_a_taken_http_port_stops_what_had_started(tmp_path: Path) -> None:
    before = other_tasks()
    btp_port = closed_port()
    with listening() as taken:
        config = config_for(tmp_path / "data", port=taken, btp_port=btp_port, bridge=unreachable_bridge())
        with pytest.raises(OSError, match="in use"):
            await start_server(config, clock=ManualClock(NOW), announce=lambda _line: None)
    assert can_listen(btp_port)  # the embedded BTP endpoint had started and was stopped
    assert other_tasks() <= before  # the bridge's workers among them
    assert open_files_under(tmp_path / "data") == []


async def test_a_revoked_admin_key_stops_what_had_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = config_for(data_dir, port=0, btp_port=closed_port())
    data_dir.mkdir()
    db = Database(config.resolved_database_url())
    await db.migrate()
    admin = await ensure_admin(db, config.auth_token or "", NOW)
    await ensure_admin(db, "sk_admin_another-key", NOW)  # the configured key is no longer the bootstrap key
    (configured,) = [key for key in await list_keys(db, admin.id) if not key.bootstrap]
    await revoke_key(db, admin.id, configured.id, NOW)
    await db.close()
    before = other_tasks()
    with pytest.raises(ConfigError, match="revoked"):
        await start_server(config, clock=ManualClock(NOW), announce=lambda _line: None)
    assert other_tasks() <= before
    assert open_files_under(data_dir) == []


async def test_a_stopped_server_releases_everything(tmp_path: Path) -> None:
    before = other_tasks()
    btp_port = closed_port()
    config = config_for(tmp_path / "data", port=0, btp_port=btp_port, bridge=unreachable_bridge())
    server = await start_server(config, clock=ManualClock(NOW), announce=lambda _line: None)
    assert not can_listen(server.port) and not can_listen(btp_port)
    await server.stop()
    assert can_listen(server.port) and can_listen(btp_port)
    assert other_tasks() <= before
    assert open_files_under(tmp_path / "data") == []
