"""The states and kinds of stored rows, one `StrEnum` per concept. Their values are what the database stores
(and what its CHECK constraints allow, migrations 0008 and 0009) and what the API shows."""

from __future__ import annotations

from enum import StrEnum


class ReservationState(StrEnum):
    """Allowance held for value about to leave: open until settled (with what left), released (nothing
    left) or recovered (its lease ran out: debited in full)."""

    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    RECOVERED = "recovered"


class ReservationKind(StrEnum):
    STREAM = "stream"
    PAYOUT = "payout"


class PullKind(StrEnum):
    """What an entry of the ledger paid: a STREAM pull, a payout, or a recovered reservation."""

    STREAM = "stream"
    PAYOUT = "payout"
    RECOVERED = "recovered"


class PayoutStatus(StrEnum):
    """Where a payout is in its lifecycle (the transitions: `spsp_pull.bridge.states`)."""

    NEW = "NEW"
    QUEUED = "QUEUED"
    IN_FLIGHT = "IN_FLIGHT"
    SENT = "SENT"
    CONFIRMED = "CONFIRMED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class PayoutBatchState(StrEnum):
    """Where an on-chain batch transaction is: built (inputs chosen), signed (its txid and hex stored, not
    yet known to be broadcast), broadcast, rejected by the node, or abandoned before signing."""

    BUILDING = "building"
    SIGNED = "signed"
    BROADCAST = "broadcast"
    REJECTED = "rejected"
    ABANDONED = "abandoned"


class WebhookMessageState(StrEnum):
    """A notification in the outbox: pending (to be delivered, with retries), delivered, dead (gave up),
    or withdrawn (never sent: what it announced was undone before its first attempt)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    WITHDRAWN = "withdrawn"
