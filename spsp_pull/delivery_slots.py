"""How many deliveries may run at once: in all, per account and per destination (scheme://host[:port]).

One tenant's slow receivers fill that tenant's slots (or that host's) and no one else's; the webhook worker
does not even claim messages that have no free slot (`busy_accounts`, `busy_destinations`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SlotLimits:
    total: int = 64
    per_account: int = 8
    per_destination: int = 4


@dataclass(slots=True)
class DeliverySlots:
    limits: SlotLimits
    _accounts: Counter[int] = field(default_factory=Counter)
    _destinations: Counter[str] = field(default_factory=Counter)
    _in_use: int = 0

    @property
    def free(self) -> int:
        return self.limits.total - self._in_use

    def busy_accounts(self) -> list[int]:
        return [a for a, n in self._accounts.items() if n >= self.limits.per_account]

    def busy_destinations(self) -> list[str]:
        return [d for d, n in self._destinations.items() if n >= self.limits.per_destination]

    def take(self, account: int | None, destination: str) -> bool:
        """Take a slot for one delivery, if the account, the destination and the total have one free."""
        if (
            self._in_use >= self.limits.total
            or (account is not None and self._accounts[account] >= self.limits.per_account)
            or self._destinations[destination] >= self.limits.per_destination
        ):
            return False
        self._in_use += 1
        if account is not None:
            self._accounts[account] += 1
        self._destinations[destination] += 1
        return True

    def give_back(self, account: int | None, destination: str) -> None:
        self._in_use -= 1
        if account is not None:
            self._accounts[account] -= 1
            if not self._accounts[account]:
                del self._accounts[account]
        self._destinations[destination] -= 1
        if not self._destinations[destination]:
            del self._destinations[destination]
