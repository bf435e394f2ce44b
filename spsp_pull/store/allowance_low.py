"""`allowance.low`: once per cycle, when 80 % of what the cycle makes pullable is used, the pointer's webhook
hears it (the payer's wallet warns its user before the allowance runs out).

Checked after value left (a pull completed, a payout sent), in a transaction of its own under the pointer's
lock: the state decides, not the moment, so a check missed (a crash after the settlement) is made good by the
next one within the cycle. `pointers.low_warned_cycle` remembers the cycle warned, so each cycle warns at most
once, whatever instance checks. Nothing is said while the pointer is paused (nothing is available then, which
is not the allowance running out).
"""

from __future__ import annotations

from datetime import datetime

from spsp_pull.domain import events
from spsp_pull.domain.agreement import balance, global_cycle_window, paused
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.store import models
from spsp_pull.store.database import Database
from spsp_pull.store.outbox import enqueue
from spsp_pull.store.pointers import lock_pointer
from spsp_pull.store.records import PointerRecord, pointer_record


async def warn_if_low(db: Database, pointer_id: int, *, now: datetime) -> bool:
    """Queue `allowance.low` for the pointer if its current cycle is low and was not warned yet; whether
    it was queued."""
    async with db.write() as session:
        row = await lock_pointer(session, models.Pointer.id == pointer_id)
        if row is None or not row.webhook:
            return False
        record = pointer_record(row)
        current = balance(record.version, record.usage, now, record.cancelled_at)
        if (
            current.cycle == row.low_warned_cycle
            or paused(record.version, now)
            or not events.allowance_low(current.interval, current.available)
        ):
            return False
        row.low_warned_cycle = current.cycle
        enqueue(
            session,
            url=row.webhook,
            event=events.ALLOWANCE_LOW,
            body=allowance_data(record, current.cycle, current.interval, current.available),
            now=now,
            account_id=row.account_id,
            pointer_id=row.id,
        )
        return True


def allowance_data(record: PointerRecord, cycle: int, used: int, available: int) -> dict[str, object]:
    """What `allowance.low` carries: the pointer's token, the cycle, what it used and what is left."""
    _, ends = global_cycle_window(record.version, cycle)
    return {
        "token": record.token,
        "cycle": cycle,
        "cycleEnds": isoformat_z(ends),
        "used": str(used),
        "available": str(available),
        "assetCode": record.terms.asset_code,
        "assetScale": record.terms.asset_scale,
    }
