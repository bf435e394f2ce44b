"""What one pull may send, from the reservations behind it — pure bookkeeping, no I/O.

A pull holds reservations (grants) in the pointer's asset. `send_limit` is what they cover in the server's
asset (rounded down, on the cumulative total). As Prepares are fulfilled, the debit is the cumulative amount
sent converted back (rounded up), allocated to the grants in the order they were made: a grant wholly used
can be settled at once, the rest when the pull ends (or is re-chunked), returning what was not needed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from spsp_pull.rates import Conversion


@dataclass(frozen=True, slots=True)
class GrantShare:
    """What to settle one reservation with."""

    reservation_id: int
    amount: int  # the reservation
    sent: int  # debited against it; the rest is returned


@dataclass(slots=True)
class _OpenGrant:
    reservation_id: int
    amount: int


class PullBudget:
    def __init__(self, conversion: Conversion) -> None:
        self._conversion = conversion
        self._open: deque[_OpenGrant] = deque()
        self._covered = 0  # pointer units reserved and not given back
        self._debited = 0  # pointer units already settled as sent
        self.fulfilled = 0  # server units delivered (cumulative)

    @property
    def covered(self) -> int:
        return self._covered

    @property
    def send_limit(self) -> int:
        """Server units the grants cover: the stream's sendMax."""
        return self._conversion.floor(self._covered)

    @property
    def debit(self) -> int:
        """Pointer units owed for what was delivered."""
        return self._conversion.ceil_back(self.fulfilled)

    @property
    def open_grants(self) -> int:
        return len(self._open)

    @property
    def open_reservation_ids(self) -> list[int]:
        return [grant.reservation_id for grant in self._open]

    def add_grant(self, reservation_id: int, amount: int) -> None:
        self._open.append(_OpenGrant(reservation_id, amount))
        self._covered += amount

    @property
    def uncovered(self) -> int:
        """Server units delivered beyond what the grants cover (0 unless sending outran `send_limit`)."""
        return max(0, self.fulfilled - self.send_limit)

    def record_fulfilled(self, server_units: int) -> None:
        """Count a delivery. Never refuses one: a Fulfill the link accepted has been paid, and what the grants
        cannot cover is still debited from them in full (see `uncovered`)."""
        self.fulfilled += server_units

    def used_up(self, *, keep: int = 0) -> list[GrantShare]:
        """Grants the debit has wholly used: settle them now, in full (leaving the newest `keep` open)."""
        shares = []
        debit = self.debit
        while len(self._open) > keep and self._debited + self._open[0].amount <= debit:
            grant = self._open.popleft()
            self._debited += grant.amount
            shares.append(GrantShare(grant.reservation_id, grant.amount, grant.amount))
        return shares

    def close_all(self) -> list[GrantShare]:
        """Settle every open grant: what the debit still needs is taken in order, the rest returned.

        Only call this with nothing in flight (a Fulfill still to come would find its grant closed):
        afterwards the budget covers exactly what was delivered."""
        shares = []
        remaining = self.debit - self._debited
        while self._open:
            grant = self._open.popleft()
            sent = min(grant.amount, remaining)
            remaining -= sent
            self._debited += sent
            self._covered -= grant.amount - sent
            shares.append(GrantShare(grant.reservation_id, grant.amount, sent))
        return shares

    def pointer_units_for(self, server_units: int) -> int:
        """The reservation that covers `server_units` more to send (rounded up)."""
        return self._conversion.ceil_back(self.send_limit + server_units) - self._covered
