"""Who may hold a place in the STREAM connection table: budgets per kind and per holder, and who makes room.

Pure bookkeeping, no I/O; `now` is passed in and never decreases. A connection is a key (its destination
segment), a kind (pull or push) and a holder (here called its account): whom the server counts it against.
A pull connection's holder is its pointer (only whoever holds a pointer can open connections to it, whereas
a BTP account is anyone's for a new token), a push connection's is the BTP account it came from, if any.
Push and pull connections have separate budgets, so pushes, which need no credentials, never take a place
from a pull.

A new connection of kind K from account A (A holds `a` connections of kind K) is admitted when there is room,
else it takes the place of one connection, else it is refused:

1. A holds its kind's most (`per_pointer` pulls, `per_account` pushes): A's own least recently active one
   makes room if it has been idle for `evict_idle_after`; otherwise refused.
2. K is at its limit: the least recently active K connection makes room if it has been idle that long;
   otherwise the least recently active connection of the account holding the most K connections does, if that
   account holds more than a + 1 (so the new connection never leaves A holding more than the account it took
   from: a flood from one account, or a few, is trimmed back towards what every other account holds);
   otherwise refused.

A connection with no account (None: no identity the server can trust) counts against its kind's limit only;
it is never capped per account and never taken from for fairness (rule 2's idle step still applies to it).
Every operation is O(1).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta


class Kind(enum.Enum):
    PULL = "pull"
    PUSH = "push"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The connection table's limits. `idle_timeout` is enforced by each STREAM connection itself (it closes
    after that long without a Prepare or a reply); the budget makes room early with `evict_idle_after`.
    `per_account` bounds the push connections of one BTP account, `per_pointer` the pull connections of one
    pointer."""

    pull: int = 8_000
    push: int = 2_000
    per_account: int = 500
    idle_timeout: timedelta = timedelta(seconds=60)
    evict_idle_after: timedelta = timedelta(seconds=10)
    per_pointer: int = 50

    def __post_init__(self) -> None:
        if self.pull < 1 or self.push < 1 or self.per_account < 1 or self.per_pointer < 1:
            raise ValueError("connection limits must be at least 1")
        if self.idle_timeout <= timedelta(0) or self.evict_idle_after <= timedelta(0):
            raise ValueError("idle_timeout and evict_idle_after must be positive")

    def of(self, kind: Kind) -> int:
        return self.pull if kind is Kind.PULL else self.push

    def per_holder(self, kind: Kind) -> int:
        """The most connections of `kind` one holder may have: a pointer its pulls, an account its pushes."""
        return self.per_pointer if kind is Kind.PULL else self.per_account


@dataclass(frozen=True, slots=True)
class Admitted:
    """The connection holds a place; `evicted` (if not None) gave it up and is for the caller to close."""

    evicted: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(slots=True)
class _Entry:
    kind: Kind
    account: str | None
    last_active: datetime


class _Holders:
    """Accounts by how many connections of one kind they hold, for the largest holder in O(1)."""

    def __init__(self) -> None:
        self._by_count: dict[int, dict[str, None]] = {}
        self.most = 0

    def move(self, account: str, before: int, after: int) -> None:
        if before:
            bucket = self._by_count[before]
            del bucket[account]
            if not bucket:
                del self._by_count[before]
        if after:
            self._by_count.setdefault(after, {})[account] = None
        if after > self.most:
            self.most = after
        elif before == self.most and before not in self._by_count:
            self.most = after  # counts move by one: the account that left the top is now the top
        # (when the table empties `after` is 0 and so is `most`)

    def largest(self) -> str | None:
        bucket = self._by_count.get(self.most)
        return next(iter(bucket)) if bucket else None


class ConnectionBudget:
    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._entries: dict[str, _Entry] = {}
        self._by_kind: dict[Kind, OrderedDict[str, None]] = {kind: OrderedDict() for kind in Kind}
        self._by_account: dict[tuple[Kind, str], OrderedDict[str, None]] = {}
        self._holders = {kind: _Holders() for kind in Kind}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def count(self, kind: Kind) -> int:
        return len(self._by_kind[kind])

    def held_by(self, kind: Kind, account: str) -> int:
        held = self._by_account.get((kind, account))
        return 0 if held is None else len(held)

    def admit(self, key: str, kind: Kind, account: str | None, now: datetime) -> Admitted | Refused:
        """Give `key` a place (see the rules above). The caller must close `evicted` if one is named."""
        if key in self._entries:
            raise ValueError(f"connection {key!r} already holds a place")
        held = 0 if account is None else self.held_by(kind, account)
        evicted: str | None = None
        if account is not None and held >= self.limits.per_holder(kind):
            evicted = self._idle_first(self._by_account[(kind, account)], now)
            if evicted is None:
                holder = "pointer" if kind is Kind.PULL else "account"
                return Refused(f"this {holder} holds {held} {kind.value} connections, the most allowed")
        elif self.count(kind) >= self.limits.of(kind):
            evicted = self._idle_first(self._by_kind[kind], now) or self._from_largest_holder(kind, held)
            if evicted is None:
                return Refused(f"all {self.limits.of(kind)} {kind.value} connection places are taken")
        if evicted is not None:
            self.release(evicted)
        self._entries[key] = _Entry(kind, account, now)
        self._by_kind[kind][key] = None
        if account is not None:
            held_now = self._by_account.setdefault((kind, account), OrderedDict())
            held_now[key] = None
            self._holders[kind].move(account, len(held_now) - 1, len(held_now))
        return Admitted(evicted)

    def touch(self, key: str, now: datetime) -> None:
        """The connection sent or received a packet (unknown keys, e.g. evicted ones, are ignored)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.last_active = max(entry.last_active, now)
        self._by_kind[entry.kind].move_to_end(key)
        if entry.account is not None:
            self._by_account[(entry.kind, entry.account)].move_to_end(key)

    def release(self, key: str) -> None:
        """The connection's place is free (unknown keys, e.g. already evicted ones, are ignored)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        del self._by_kind[entry.kind][key]
        if entry.account is not None:
            group = (entry.kind, entry.account)
            held = self._by_account[group]
            del held[key]
            self._holders[entry.kind].move(entry.account, len(held) + 1, len(held))
            if not held:
                del self._by_account[group]

    def _idle_first(self, order: OrderedDict[str, None], now: datetime) -> str | None:
        """The least recently active connection in `order`, if it has been idle for `evict_idle_after`."""
        key = next(iter(order), None)
        if key is None or now - self._entries[key].last_active < self.limits.evict_idle_after:
            return None
        return key

    def _from_largest_holder(self, kind: Kind, held: int) -> str | None:
        holders = self._holders[kind]
        account = holders.largest()
        if account is None or holders.most <= held + 1:
            return None
        return next(iter(self._by_account[(kind, account)]))
