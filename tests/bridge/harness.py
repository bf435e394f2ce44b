"""Running the payout bridge in tests: real adapters against the fakes on 127.0.0.1, a real database, a
manual clock, and the checks every test ends with (money left at most once, every reservation closed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from spsp_pull.bridge.backends.bitcoind import BitcoindConfig
from spsp_pull.bridge.backends.lnd import LndConfig
from spsp_pull.bridge.inputs import OfferRequest
from spsp_pull.bridge.service import Bridge, start_bridge
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.domain.agreement import balance
from spsp_pull.domain.clock import ManualClock
from spsp_pull.rates import StaticRates
from spsp_pull.store import models, pointers
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database
from spsp_pull.store.payouts import PayoutRecord
from spsp_pull.store.records import PointerRecord
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.bridge.fakes.fake_lnd import FakeLnd
from tests.store.pointer_factory import make_pointer

RATES = StaticRates({"BTC/USD": Decimal("50000")})  # 1 USD cent = 20 sat
TIMEOUT = timedelta(seconds=1)


def settings(
    bitcoind: FakeBitcoind | None = None, lnd: FakeLnd | None = None, **changes: object
) -> BridgeSettings:
    base = BridgeSettings(
        bitcoind=None if bitcoind is None else BitcoindConfig.from_url(bitcoind.url(), timeout=TIMEOUT),
        lnd=None if lnd is None else LndConfig(lnd.base_url, lnd.state.macaroon_hex, timeout=TIMEOUT),
        rates=RATES,
        background=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@asynccontextmanager
async def running(config: BridgeSettings, db: Database, clock: ManualClock) -> AsyncIterator[Bridge]:
    bridge = await start_bridge(config, db, clock)
    try:
        yield bridge
    finally:
        await bridge.stop()


async def pointer(db: Database, now: datetime, amount: int = 100_000, **terms: object) -> PointerRecord:
    """A USD pointer (scale 2) allowing `amount` cents per month."""
    return await make_pointer(db, now, amount=amount, **terms)


async def fresh(db: Database, record: PointerRecord) -> PointerRecord:
    found = await pointers.find_by_id(db, record.id)
    assert found is not None
    return found


async def offer(bridge: Bridge, record: PointerRecord, destination: str, **fields: object) -> PayoutRecord:
    request = OfferRequest(destination=destination, **fields)  # type: ignore[arg-type]
    return await bridge.create(await fresh(bridge.db, record), request, created_by="owner")


async def payout(db: Database, record: PayoutRecord) -> PayoutRecord:
    found = await store.find_payout(db, payout_id=record.id)
    assert found is not None
    return found


async def open_reservations(db: Database) -> list[models.Reservation]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(select(models.Reservation).where(models.Reservation.state == "open"))
            ).all()
        )


async def assert_reservations_closed(db: Database) -> None:
    """Every reservation ends settled or released; a payout's reservation matches its status."""
    assert await open_reservations(db) == []
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    models.Payout.status,
                    models.Payout.debit,
                    models.Reservation.state,
                    models.Reservation.settled,
                ).join(models.Reservation, models.Reservation.id == models.Payout.reservation_id)
            )
        ).all()
    for status, debit, state, settled in rows:
        if status in ("SENT", "CONFIRMED"):
            assert (state, settled) == ("settled", debit), status
        else:
            assert state == "released", status


def paid_outputs(node: FakeBitcoind, script_hex: str) -> list[tuple[str, int]]:
    """(txid, sat) of every mempool or mined output paying `script_hex`."""
    script = bytes.fromhex(script_hex)
    return [
        (txid, coin.value)
        for (txid, _vout), coin in node.state.outputs.items()
        if coin.script == script and (txid in node.state.mempool or txid in node.state.confirmed)
    ]


async def available(db: Database, record: PointerRecord, now: datetime) -> int:
    current = await fresh(db, record)
    return balance(current.version, current.usage, now, current.cancelled_at).available
