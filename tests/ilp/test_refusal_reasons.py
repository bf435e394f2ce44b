"""A pull the server refuses tells the payee why: no rate, cancelled, ended (past the last cycle, past the
expiry), nothing available yet (with the next cycle's start), sender busy.

A real server process (embedded BTP endpoint on loopback, SQLite and PostgreSQL) against our Python payee
(`spsp_pull.payee.pull`, what `spsp-pull pull` prints), a scripted payee that reads the raw STREAM frames, and
the unmodified JavaScript pullers. Every refusal sends nothing, and the ledger audit is clean afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from harness.js_stack import JsRuntime, run_js_pullers
from harness.server_process import create_pointer
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.domain.pull_refusal import SENDER_BUSY
from spsp_pull.payee import PaymentOutcome, default_btp_url, pull, query
from spsp_pull.store import models
from stream import ilp
from stream.frames import ConnectionClose, StreamClose, StreamErrorCode
from stream.packet import decrypt_packet
from tests.ilp.hostile.harness import ADMIN, Harness, Pointer, hostile_server
from tests.ilp.hostile.payee import PAYEE_STREAM, HostilePayee
from tests.interop.conftest import js_runtime  # noqa: F401 (the JS stack's gate, as a fixture here)

NO_RATE = "no rate from USD to XRP"
CANCELLED = "cancelled: the payer cancelled this pointer"
ENDED = "ended: past the last cycle (1)"
PULL_TIME_LIMIT = timedelta(seconds=20)


@asynccontextmanager
async def server(backend: str, tmp_path: Path, **env: str) -> AsyncIterator[Harness]:
    async with hostile_server(backend, tmp_path, **env) as harness:
        yield harness


async def make_pointer(harness: Harness, amount: int = 3000, **fields: Any) -> Pointer:
    """A pointer with these terms (one day, one cycle, cap: false unless given)."""
    terms: dict[str, Any] = {"amount": str(amount), "interval": "P1D", "cycles": 1, **fields}
    token = await create_pointer(harness.server, ADMIN, **terms)
    async with harness.db.read() as session:
        query_id = select(models.Pointer.id).where(models.Pointer.token == token)
        pointer_id = (await session.scalars(query_id)).one()
    details = await query(f"{harness.server.url}/{token}")
    return Pointer(token, pointer_id, details, amount, server_units_per_unit=1)  # type: ignore[arg-type]


async def our_pull(harness: Harness, pointer: Pointer, amount: int) -> PaymentOutcome:
    assert harness.server.btp_port is not None
    btp = default_btp_url(port=harness.server.btp_port)
    return await pull(
        f"{harness.server.url}/{pointer.token}", amount, btp_url=btp, time_limit=PULL_TIME_LIMIT
    )


async def scripted(harness: Harness, pointer: Pointer) -> HostilePayee:
    """A raw payee on a connection of its own (a fresh SPSP query)."""
    url = f"ws://127.0.0.1:{harness.server.btp_port}"
    details = await query(f"{harness.server.url}/{pointer.token}")
    return await HostilePayee.join(
        url, "raw" + secrets.token_hex(4), details.destination_account, details.shared_secret
    )


async def stream_close_message(harness: Harness, pointer: Pointer) -> StreamClose:
    """What the server's StreamClose says when a raw payee opens its stream (and it sends no money)."""
    async with await scripted(harness, pointer) as payee:
        await payee.open_stream(receive_max=10_000)
        incoming = await payee.next_prepare()
        assert incoming.prepare.amount == 0 and incoming.packet is not None
        [close] = [f for f in incoming.packet.frames if isinstance(f, StreamClose)]
        assert close.stream_id == PAYEE_STREAM
        return close


async def assert_nothing_sent(harness: Harness, pointer: Pointer) -> None:
    """The ledger audit is clean and the pointer debited nothing, holds nothing."""
    ledger = await harness.check(pointer, [])
    assert (ledger.debited, ledger.reserved) == (0, 0)


async def cancel(harness: Harness, pointer: Pointer) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    url = f"{harness.server.url}/pointers/{pointer.token}"
    async with aiohttp.ClientSession() as session, session.delete(url, headers=headers) as response:
        assert response.status == 200, await response.text()


async def test_no_rate_is_told_in_the_reject_and_the_connection_close(backend: str, tmp_path: Path) -> None:
    async with server(backend, tmp_path) as harness:
        pointer = await make_pointer(harness, assetCode="USD", assetScale=2)
        outcome = await our_pull(harness, pointer, 2500)
        assert (outcome.amount, outcome.reason, outcome.detail) == (0, "closed-by-server", NO_RATE)
        async with await scripted(harness, pointer) as payee:
            reply = await payee.send_frames()
            assert isinstance(reply, ilp.Reject)
            assert (reply.code, reply.message) == (ilp.ErrorCode.F99_APPLICATION_ERROR, NO_RATE)
            frames = decrypt_packet(payee.keys, reply.data).frames
            assert frames == (ConnectionClose(StreamErrorCode.APPLICATION_ERROR, NO_RATE),)
        await assert_nothing_sent(harness, pointer)


async def test_a_cancelled_pointer_says_so(backend: str, tmp_path: Path) -> None:
    async with server(backend, tmp_path) as harness:
        pointer = await make_pointer(harness)
        await cancel(harness, pointer)
        outcome = await our_pull(harness, pointer, 1000)
        assert (outcome.amount, outcome.reason, outcome.detail) == (0, "closed-by-server", CANCELLED)
        assert (await stream_close_message(harness, pointer)).message == CANCELLED
        await assert_nothing_sent(harness, pointer)


async def test_past_the_last_cycle_says_ended(backend: str, tmp_path: Path) -> None:
    async with server(backend, tmp_path) as harness:
        pointer = await make_pointer(harness, cap=True, start="2020-01-01T00:00:00Z")
        outcome = await our_pull(harness, pointer, 1000)
        assert (outcome.amount, outcome.detail) == (0, ENDED)
        assert (await stream_close_message(harness, pointer)).message == ENDED
        await assert_nothing_sent(harness, pointer)


async def test_past_the_expiry_says_when_it_expired(backend: str, tmp_path: Path) -> None:
    async with server(backend, tmp_path) as harness:
        # The expiry is wall time, counted from when the server is up: starting it can take seconds.
        expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        pointer = await make_pointer(harness, expiry=isoformat_z(expiry))
        await asyncio.sleep((expiry - datetime.now(UTC)).total_seconds() + 0.05)
        expected = f"ended: the agreement expired at {isoformat_z(expiry)}"
        assert (await our_pull(harness, pointer, 1000)).detail == expected
        assert (await stream_close_message(harness, pointer)).message == expected
        await assert_nothing_sent(harness, pointer)


async def test_nothing_available_yet_names_the_next_cycles_start(backend: str, tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with server(backend, tmp_path) as harness:
        pointer = await make_pointer(harness, 1000, cap=True, cycles=3, start=isoformat_z(start))
        first = await our_pull(harness, pointer, 1000)
        assert first.complete
        expected = f"nothing available yet: the next cycle starts at {isoformat_z(start + timedelta(days=1))}"
        outcome = await our_pull(harness, pointer, 1000)
        assert (outcome.amount, outcome.detail) == (0, expected)
        assert (await stream_close_message(harness, pointer)).message == expected
        ledger = await harness.check(pointer, [])
        assert (ledger.debited, ledger.reserved) == (1000, 0)


async def test_before_the_start_names_the_first_cycles_start(backend: str, tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    async with server(backend, tmp_path) as harness:
        pointer = await make_pointer(harness, start=isoformat_z(start))
        expected = f"nothing available yet: the first cycle starts at {isoformat_z(start)}"
        assert (await our_pull(harness, pointer, 1000)).detail == expected
        assert (await stream_close_message(harness, pointer)).message == expected
        await assert_nothing_sent(harness, pointer)


async def test_a_second_stream_while_another_sends_is_told_the_sender_is_busy(
    backend: str, tmp_path: Path
) -> None:
    """The first payee holds the server's Prepares (its pull keeps the pointer's sender lease); a second
    connection waits SPSP_SENDER_WAIT, then is closed with the reason and gets nothing."""
    async with server(backend, tmp_path, SPSP_SENDER_WAIT="1") as harness:
        pointer = await make_pointer(harness, 3000)
        sending = await harness.payee(pointer)
        await sending.open_stream(receive_max=3000)
        held = await sending.money(3)
        outcome = await our_pull(harness, pointer, 1000)
        assert (outcome.amount, outcome.reason, outcome.detail) == (
            0,
            "closed-by-server",
            SENDER_BUSY.message,
        )
        async with await scripted(harness, pointer) as raw:
            await raw.open_stream(receive_max=1000)
            incoming = await raw.next_prepare()
            assert incoming.prepare.amount == 0 and incoming.packet is not None
            closes = [f for f in incoming.packet.frames if isinstance(f, ConnectionClose)]
            assert closes == [ConnectionClose(StreamErrorCode.APPLICATION_ERROR, SENDER_BUSY.message)]
        for prepare in held:
            await sending.fulfill(prepare)
        await sending.close_connection()
        ledger = await harness.check(pointer, [sending])
        assert (sending.paid, ledger.debited, ledger.reserved) == (3000, 3000, 0)


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["direct", "spsp"])
async def test_the_javascript_pullers_see_the_reason(
    tmp_path: Path,
    js_runtime: JsRuntime,  # noqa: F811 (the fixture imported above)
    mode: str,
) -> None:
    """ilp-protocol-stream 2.7.1 (`direct`) reports the server's ConnectionClose and StreamClose messages.
    `SPSP.pull` of ilp-protocol-spsp 3.0.0 reports a refused connection's message, but replaces any error of
    a stream with its own fixed 'Failed to receive specified amount': there only the no-rate reason shows."""
    async with server("sqlite", tmp_path) as harness:
        assert harness.server.btp_port is not None
        no_rate = await make_pointer(harness, assetCode="USD", assetScale=2)
        cancelled = await make_pointer(harness)
        await cancel(harness, cancelled)
        for pointer, reason in ((no_rate, NO_RATE), (cancelled, CANCELLED)):
            url = f"{harness.server.url}/{pointer.token}"
            [result] = await run_js_pullers(url, harness.server.btp_port, 1000, mode=mode, timeout=15)  # type: ignore[arg-type]
            assert (result.ok, result.received) == (False, 0)
            assert result.ms < 5000, f"a refusal must end the pull promptly, took {result.ms:.0f} ms"
            if mode == "direct" or pointer is no_rate:
                assert reason in (result.error or ""), result.error
            else:
                assert result.error == "Failed to receive specified amount"
            await assert_nothing_sent(harness, pointer)
