"""Why a pull gets nothing: one short, stable sentence per cause, told to the payee in the STREAM close (or
the ILP Reject) so it need not read the server's log.

`refusal` maps an agreement's state at `now` (the `state` the SPSP answer's `pull.state` shows, and its
balance) to the reason; `no_rate` and `SENDER_BUSY` are the two causes outside the agreement. Codes:

    no-rate      no exchange rate from the pointer's asset to the server's
    cancelled    the payer cancelled the pointer
    paused       the payer paused the pointer (the message names when it resumes by itself, if it does)
    pending      before the start (the message names the first cycle's start)
    not-yet      this cycle's allowance is used; the message names the next cycle's start
    used-up      the last cycle's allowance is used
    expired      at or after the expiry
    ended        past the last cycle, nothing accumulated left
    sender-busy  another stream of this pointer is sending (RFC 0036: one at a time)

Messages start with a fixed phrase per code and carry times as ISO 8601 UTC (`Z`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from spsp_pull.domain.agreement import Usage, Version, balance, global_cycle_window, resumes_at, state
from spsp_pull.domain.clock import isoformat_z


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


SENDER_BUSY = Refusal("sender-busy", "sender busy: another stream of this pointer is sending")


def no_rate(base: str, quote: str) -> Refusal:
    return Refusal("no-rate", f"no rate from {base.upper()} to {quote.upper()}")


def paused_refusal(version: Version, now: datetime) -> Refusal:
    """The refusal of a paused agreement (pulls and payouts alike)."""
    until = resumes_at(version, now)
    resumes = "until the payer resumes it" if until is None else f"until {isoformat_z(until)}"
    return Refusal("paused", f"paused: the payer paused this pointer {resumes}")


def refusal(version: Version, usage: Usage, now: datetime, cancelled_at: datetime | None) -> Refusal | None:
    """Why nothing can be pulled at `now`; None while something is available."""
    terms = version.terms
    current = state(version, now, cancelled_at)
    if current == "cancelled":
        return Refusal("cancelled", "cancelled: the payer cancelled this pointer")
    if current == "paused":
        return paused_refusal(version, now)
    if current == "pending":
        return Refusal(
            "pending", f"nothing available yet: the first cycle starts at {isoformat_z(terms.start)}"
        )
    if current == "expired":
        assert terms.expiry is not None
        return Refusal("expired", f"ended: the agreement expired at {isoformat_z(terms.expiry)}")
    current_balance = balance(version, usage, now, cancelled_at)
    if current_balance.available > 0:
        return None
    if current == "ended":
        return Refusal("ended", f"ended: past the last cycle ({terms.cycles})")
    cycle = current_balance.cycle
    if cycle >= terms.cycles:
        return Refusal("used-up", f"used up: the last cycle ({terms.cycles}) has nothing left")
    next_start, _ = global_cycle_window(version, cycle + 1)
    if terms.expiry is not None and terms.expiry <= next_start:
        return Refusal(
            "used-up", f"used up: the agreement expires at {isoformat_z(terms.expiry)} before another cycle"
        )
    return Refusal("not-yet", f"nothing available yet: the next cycle starts at {isoformat_z(next_start)}")


# The fixed phrase each message starts with, for the payee that reads the close back into a code.
_PHRASES = (
    ("no rate from ", "no-rate"),
    ("cancelled: ", "cancelled"),
    ("paused: ", "paused"),
    ("nothing available yet: the first cycle ", "pending"),
    ("nothing available yet: the next cycle ", "not-yet"),
    ("used up: ", "used-up"),
    ("ended: the agreement expired ", "expired"),
    ("ended: ", "ended"),
    ("sender busy: ", "sender-busy"),
)


def code_of(message: str) -> str | None:
    """The code of a refusal message (as a payee reads it from the STREAM close); None for any other text."""
    return next((code for phrase, code in _PHRASES if message.startswith(phrase)), None)
