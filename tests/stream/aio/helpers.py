"""Prepares that carry the preimage of their condition, and handlers that fulfill them."""

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from stream import ilp

SERVER_ADDRESS = "private.pysrv"
ASSET = ("XRP", 9)


def prepare_to(
    destination: str, *, expires_in: float = 10.0, amount: int = 1, tag: bytes = b""
) -> ilp.Prepare:
    """A Prepare whose data starts with the preimage of its condition (then `tag`); expiry in whole ms."""
    preimage = secrets.token_bytes(32)
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    return ilp.Prepare(
        amount=amount,
        expires_at=expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000),
        execution_condition=hashlib.sha256(preimage).digest(),
        destination=destination,
        data=preimage + tag,
    )


def fulfills(prepare: ilp.Prepare, reply: ilp.Fulfill | ilp.Reject) -> bool:
    """Whether `reply` is the Fulfill an echo handler gives `prepare`."""
    return (
        isinstance(reply, ilp.Fulfill)
        and reply.fulfillment == prepare.data[:32]
        and reply.data == prepare.data
    )


async def echo(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
    """Fulfills with the preimage in the data and echoes the data."""
    preimage = prepare.data[:32]
    if hashlib.sha256(preimage).digest() != prepare.execution_condition:
        return ilp.Reject(ilp.ErrorCode.F05_WRONG_CONDITION, "", "no preimage")
    return ilp.Fulfill(preimage, prepare.data)


class Recorder:
    """An echo handler that remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[ilp.Prepare] = []

    async def __call__(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        self.seen.append(prepare)
        return await echo(prepare)


async def hang(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
    await asyncio.sleep(3600)
    raise AssertionError("not reached")


async def round_trips(
    send: Callable[[ilp.Prepare], Awaitable[ilp.Fulfill | ilp.Reject]],
    destination: str,
    count: int,
    in_flight: int,
) -> None:
    """Sends `count` echo Prepares, `in_flight` at a time, and asserts every one is fulfilled (the same
    exchange, timed, is bench/btp_links.py)."""
    prepares = [prepare_to(destination, tag=i.to_bytes(4, "big"), expires_in=30) for i in range(count)]
    replies: list[ilp.Fulfill | ilp.Reject | None] = [None] * count
    cursor = iter(range(count))

    async def worker() -> None:
        for i in cursor:
            replies[i] = await send(prepares[i])

    async with asyncio.TaskGroup() as group:
        for _ in range(in_flight):
            group.create_task(worker())
    failed = [(i, r) for i, r in enumerate(replies) if r is None or not fulfills(prepares[i], r)]
    assert not failed, f"{len(failed)} of {count} not fulfilled, first: {failed[:3]}"


def codes(replies: Sequence[ilp.Fulfill | ilp.Reject]) -> list[str]:
    return [r.code if isinstance(r, ilp.Reject) else "fulfill" for r in replies]
