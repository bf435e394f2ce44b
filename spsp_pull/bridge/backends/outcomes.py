"""What became of an attempt to send money, as far as the backend can prove it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

P = TypeVar("P")


@dataclass(frozen=True)
class Succeeded(Generic[P]):
    """The money left (or provably will): `proof` is the txid or the Lightning payment's preimage."""

    proof: P


@dataclass(frozen=True)
class Failed:
    """Proof that nothing was paid: the backend refused, or finished the attempt without paying."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Unknown:
    """No verdict (time-out, dropped connection, still in flight): reconcile later, never retry blindly."""

    detail: str


Outcome: TypeAlias = Succeeded[P] | Failed | Unknown
