"""The webhook events: their types and the one envelope every delivery carries.

    {"id": "<the Webhook-Id header>", "type": "<event type>", "createdAt": "<ISO 8601 Z>", "data": {...}}

The outbox stores each event's `data`; the envelope is made when the message is delivered, from the message's
id, type and creation time, so the same bytes are signed whatever instance delivers them. `pull.completed`
is the one event older than the envelope, and the existing pull servers' receivers (RFC 0036, the JavaScript
server) read its fields at the top level: its body carries them there as well, besides `data`.
"""

from __future__ import annotations

from datetime import datetime

from spsp_pull.domain.clock import isoformat_z

PULL_COMPLETED = "pull.completed"
POINTER_CREATED = "pointer.created"
POINTER_UPDATED = "pointer.updated"
POINTER_PAUSED = "pointer.paused"
POINTER_RESUMED = "pointer.resumed"
POINTER_CANCELLED = "pointer.cancelled"
ALLOWANCE_LOW = "allowance.low"
PAYOUT_CREATED = "payout.created"
PAYOUT_APPROVED = "payout.approved"
PAYOUT_SENT = "payout.sent"
PAYOUT_FAILED = "payout.failed"

ALLOWANCE_LOW_SHARE = (4, 5)
"""`allowance.low` once this share (80 %) of a cycle's allowance is used."""


def envelope(
    message_id: int, event_type: str, created_at: datetime, data: dict[str, object]
) -> dict[str, object]:
    """The body delivered for one outbox message."""
    body: dict[str, object] = {
        "id": str(message_id),
        "type": event_type,
        "createdAt": isoformat_z(created_at),
        "data": data,
    }
    return {**data, **body} if event_type == PULL_COMPLETED else body


def allowance_low(used_in_cycle: int, available: int) -> bool:
    """Whether at least 80 % of what the current cycle makes pullable (what it used plus what is still
    available) is used: the payer's wallet warns its user before the allowance runs out."""
    share, whole = ALLOWANCE_LOW_SHARE
    return used_in_cycle > 0 and used_in_cycle * whole >= (used_in_cycle + available) * share
