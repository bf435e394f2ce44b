"""The interface every ILP transport offers, and the expiry rules they share.

An `IlpLink` is one place on the network: it sends Prepares and hands the Prepares it receives to one handler.
`send` never raises for protocol failures: a peer that does not answer in time yields an R00 Reject, a lost
connection a T01 Reject. A Fulfill `send` returns is one this side accepted, so it is paid: every link passes
its peer's answer through `accept_reply`, which refuses Fulfills that came too late or do not match.
"""

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from stream import ilp

IlpHandler = Callable[[ilp.Prepare], Awaitable[ilp.Fulfill | ilp.Reject]]

# Time kept back from a Prepare's expiry when answering it, so that the answer arrives before the sender's own
# timer fires (at most half of what is left).
ANSWER_MARGIN = timedelta(milliseconds=50)
# How long a sender waits for the answer to a Prepare at most (its expiry may cut it shorter).
RESPONSE_TIMEOUT = timedelta(seconds=35)

_log = logging.getLogger(__name__)


class IlpLink(Protocol):
    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject: ...

    def set_handler(self, handler: IlpHandler) -> None: ...


def reject(code: str, triggered_by: str, message: str = "", data: bytes = b"") -> ilp.Reject:
    return ilp.Reject(code=code, triggered_by=triggered_by, message=message, data=data)


def time_left(prepare: ilp.Prepare) -> timedelta:
    """Until `prepare` expires (negative once it has)."""
    return prepare.expires_at - datetime.now(UTC)


def accept_reply(
    prepare: ilp.Prepare, reply: ilp.IlpReply, triggered_by: str, now: datetime | None = None
) -> ilp.IlpReply:
    """What a sender may accept as the answer to `prepare`: a Fulfill counts (is paid) only when its
    fulfillment hashes to the condition (else F05) and it arrived before the Prepare expired.

    A Fulfill at or after `expires_at` is refused with R00, not silently paid: the expiry is the limit every
    hop agreed to, the sender has given up on the packet (its own timer answered R00, or is about to), and
    whatever the peer did with the money after that is the peer's risk. Links call this the moment the answer
    arrives, so the decision is made once, where the money moves."""
    if not isinstance(reply, ilp.Fulfill):
        return reply
    if hashlib.sha256(reply.fulfillment).digest() != prepare.execution_condition:
        return reject(
            ilp.ErrorCode.F05_WRONG_CONDITION, triggered_by, "fulfillment does not match the condition"
        )
    if (now or datetime.now(UTC)) >= prepare.expires_at:
        return reject(
            ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, triggered_by, "fulfilled after the prepare expired"
        )
    return reply


def answer_budget(prepare: ilp.Prepare) -> timedelta | None:
    """How long a receiver may take to answer `prepare`; None when it arrived expired."""
    left = time_left(prepare)
    if left <= timedelta(0):
        return None
    return left - min(ANSWER_MARGIN, left / 2)


async def answer(
    handler: IlpHandler, prepare: ilp.Prepare, budget: timedelta, triggered_by: str
) -> ilp.IlpReply:
    """`handler(prepare)` bounded by `budget`: R00 when it takes longer, T00 when it fails."""
    try:
        async with asyncio.timeout(budget.total_seconds()):
            return await handler(prepare)
    except TimeoutError:
        return reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, triggered_by, "handler did not answer in time")
    except Exception:
        _log.exception("ILP handler failed")
        return reject(ilp.ErrorCode.T00_INTERNAL_ERROR, triggered_by, "internal error")


def encode_reply(reply: ilp.IlpReply, triggered_by: str) -> bytes:
    """The wire form of a handler's answer; one that cannot be encoded becomes a T00 Reject."""
    try:
        return ilp.encode(reply)
    except Exception:
        _log.exception("ILP handler returned a reply that cannot be encoded: %r", reply)
        return ilp.encode(reject(ilp.ErrorCode.T00_INTERNAL_ERROR, triggered_by, "internal error"))
