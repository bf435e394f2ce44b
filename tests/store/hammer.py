"""A separate OS process that reserves and settles against one pointer until nothing is left.

Run by test_reservations.py, twice at once (on the test's SQLite driver): each process connects, prints
"ready", waits for a line on stdin (so neither can finish before the other has started), then prints the total
it settled."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import datetime, timedelta

from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import pointers, reservations
from spsp_pull.store.database import Database
from spsp_pull.store.sqlite_connections import SQLITE_DRIVERS, SqliteDriver


async def hammer(
    url: str, schema: str | None, pointer_id: int, now: datetime, seed: int, sqlite_driver: SqliteDriver
) -> int:
    db = Database(url, schema=schema, sqlite_driver=sqlite_driver)
    rng = random.Random(seed)
    total = 0
    try:
        if await pointers.find_by_id(db, pointer_id) is None:
            raise RuntimeError(f"no pointer {pointer_id}")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def worker() -> int:
            mine = 0
            for _ in range(2000):
                grant = await reservations.reserve(
                    db,
                    pointer_id,
                    rng.randint(1, 500),
                    kind=ReservationKind.STREAM,
                    now=now,
                    lease=timedelta(minutes=5),
                )
                if grant is None:
                    return mine
                sent = grant.amount if rng.random() < 0.8 else rng.randint(0, grant.amount)
                await reservations.settle(db, grant.reservation_id, sent, now=now)
                mine += sent
            raise RuntimeError("did not run out of allowance")

        for part in await asyncio.gather(*(worker() for _ in range(8))):
            total += part
    finally:
        await db.close()
    return total


if __name__ == "__main__":
    url, schema, pointer_id, now, seed, driver = sys.argv[1:7]
    assert driver in SQLITE_DRIVERS, driver
    at = datetime.fromisoformat(now)
    print(asyncio.run(hammer(url, schema or None, int(pointer_id), at, int(seed), driver)))
