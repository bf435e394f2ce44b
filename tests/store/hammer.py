"""A separate OS process that reserves and settles against one pointer until nothing is left.

Run by test_reservations.py, twice at once: each process connects, prints "ready", waits for a line on stdin
(so neither can finish before the other has started), then prints the total it settled."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import datetime, timedelta

from spsp_pull.store import pointers, reservations
from spsp_pull.store.database import Database


async def hammer(url: str, schema: str | None, pointer_id: int, now: datetime, seed: int) -> int:
    db = Database(url, schema=schema)
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
                    db, pointer_id, rng.randint(1, 500), kind="stream", now=now, lease=timedelta(minutes=5)
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
    url, schema, pointer_id, now, seed = sys.argv[1:6]
    print(asyncio.run(hammer(url, schema or None, int(pointer_id), datetime.fromisoformat(now), int(seed))))
