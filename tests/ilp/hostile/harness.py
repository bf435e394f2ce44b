"""A real server process (embedded BTP endpoint on loopback, SQLite or PostgreSQL), pointers on it, hostile
payees against them, and the check every scenario ends with: the ledger audit, and per pointer

    what the payees were paid (Fulfills returned before expiry) <= what the ledger debited <= authorised.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from sqlalchemy import select

from harness.server_process import ServerProcess, create_pointer
from spsp_pull.payee import SpspDetails, query
from spsp_pull.store import models
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from tests.ilp.hostile.databases import process_database, url_of
from tests.ilp.hostile.payee import HostilePayee

ADMIN = "hostile-admin-key"
PACKET = 1000  # the most one of the server's Prepares carries: a pull of a few thousand takes several
# How long the server's Prepares live (SPSP_PACKET_TIMEOUT): scenarios that wait for Prepares to expire take
# this long, and payees that hold Fulfills (1.5 s at most) still answer in time.
PACKET_TIMEOUT = timedelta(seconds=4)
SETTLE_WITHIN = PACKET_TIMEOUT + timedelta(seconds=15)  # every Prepare is then answered or expired
SERVER_SCALE = 9  # the embedded endpoint's asset: XRP, scale 9


@dataclass(frozen=True, slots=True)
class Pointer:
    token: str
    id: int
    details: SpspDetails
    amount: int  # what the agreement authorises (one cycle), in the pointer's units
    server_units_per_unit: Fraction  # 1 for pointers in the server's asset


@dataclass(frozen=True, slots=True)
class Ledger:
    """Where a pointer stands once its pulls are over."""

    debited: int  # pulled_total, in the pointer's units
    reserved: int


class Harness:
    def __init__(self, server: ServerProcess, db: Database) -> None:
        self.server = server
        self.db = db
        self.payees: list[HostilePayee] = []

    async def pointer(
        self, amount: int, *, asset: tuple[str, int] = ("XRP", SERVER_SCALE), rate: Fraction = Fraction(1)
    ) -> Pointer:
        """A one-cycle pointer of `amount`; `rate`: server units per pointer unit for another asset."""
        code, scale = asset
        token = await create_pointer(
            self.server,
            ADMIN,
            amount=str(amount),
            assetCode=code,
            assetScale=scale,
            interval="P1D",
            cycles=1,
        )
        async with self.db.read() as session:
            pointer_id = (
                await session.scalars(select(models.Pointer.id).where(models.Pointer.token == token))
            ).one()
        details = await query(f"{self.server.url}/{token}")
        return Pointer(token, pointer_id, details, amount, rate)

    async def payee(self, pointer: Pointer, name: str | None = None) -> HostilePayee:
        username = name or "payee" + secrets.token_hex(4)
        url = f"ws://127.0.0.1:{self.server.btp_port}"
        details = pointer.details
        payee = await HostilePayee.join(url, username, details.destination_account, details.shared_secret)
        self.payees.append(payee)
        return payee

    async def settled(self, pointer: Pointer) -> Ledger:
        """The pointer's counters once no pull holds anything on it: no open reservation, no sender lease.

        The pulls run in another process, so this polls the database (bounded by SETTLE_WITHIN)."""
        deadline = datetime.now(UTC) + SETTLE_WITHIN
        while True:
            async with self.db.read() as session:
                row = (
                    await session.execute(
                        select(
                            models.Pointer.pulled_total,
                            models.Pointer.reserved_total,
                            models.Pointer.sender,
                        ).where(models.Pointer.id == pointer.id)
                    )
                ).one()
            if row.reserved_total == 0 and row.sender is None:
                return Ledger(row.pulled_total, row.reserved_total)
            if datetime.now(UTC) >= deadline:
                raise AssertionError(f"pointer {pointer.id} still holds {row.reserved_total} after the pull")
            await asyncio.sleep(0.1)

    async def check(self, pointer: Pointer, payees: Sequence[HostilePayee]) -> Ledger:
        """The audit is clean, and paid <= debited <= authorised for `pointer` (paid by `payees`)."""
        ledger = await self.settled(pointer)
        report = await audit_ledger(self.db, now=datetime.now(UTC))
        assert [m.line() for m in report.mismatches] == []
        paid = sum(payee.paid for payee in payees)
        assert paid <= ledger.debited * pointer.server_units_per_unit, (
            f"paid {paid} server units, debited only {ledger.debited} "
            f"(= {ledger.debited * pointer.server_units_per_unit} server units)"
        )
        assert ledger.debited <= pointer.amount, f"debited {ledger.debited} of {pointer.amount} authorised"
        return ledger


@asynccontextmanager
async def hostile_server(backend: str, tmp_path: Path, **env: str) -> AsyncIterator[Harness]:
    """`spsp-pull serve` with its embedded BTP endpoint on `backend`, Prepares of at most PACKET units that
    live PACKET_TIMEOUT."""
    data_dir = tmp_path / "server"
    async with process_database(backend, data_dir) as url:
        settings = {
            "SPSP_AUTH_TOKEN": ADMIN,
            "SPSP_MAX_PACKET_AMOUNT": str(PACKET),
            "SPSP_PACKET_TIMEOUT": f"{PACKET_TIMEOUT.total_seconds():g}s",
            **({"SPSP_DATABASE_URL": url} if url else {}),
            **env,
        }
        db = Database(url_of(backend, data_dir, url))
        try:
            async with ServerProcess(data_dir, env=settings, embedded_btp=True) as server:
                harness = Harness(server, db)
                try:
                    yield harness
                finally:
                    for payee in harness.payees:
                        await payee.drop_link()
        finally:
            await db.close()
