"""What the payee's page says about a pull pointer, in words: the terms, what is available now, the cycle,
the state. Pure: built from the pointer, its API view and the time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from spsp_pull.domain.agreement import current_cycle, global_cycle_window
from spsp_pull.domain.clock import parse_timestamp
from spsp_pull.store.records import PointerRecord, PullRecord
from spsp_pull.web.money import format_money
from spsp_pull.web.words import every, moment, plural

PULL_KINDS = {"stream": "Interledger pull", "payout": "Bitcoin payout", "recovered": "Recovered pull"}


@dataclass(frozen=True, slots=True)
class PullLine:
    when: str
    amount: str
    cycle: int
    kind: str


@dataclass(frozen=True, slots=True)
class PayeeSummary:
    title: str  # the description, or "Pull payment" when there is none
    description: str | None
    metadata: str | None  # as indented JSON text
    terms: str  # "10.00 USD every month, 12 cycles"
    carry_over: str  # what happens to allowance not pulled in a cycle
    state: str  # the API's state: active, paused, pending, ended, expired, cancelled
    state_text: str  # "Active", "Paused until 1 March 2024, 12:00 UTC", ...
    available: str  # "10.00 USD"
    cycle: str | None  # "cycle 3 of 12"; None before the start
    next_cycle: str | None  # "Cycle 4 starts 1 May 2024, 00:00 UTC"; None when no cycle follows
    pulled_total: str
    expiry: str | None
    pointer: str  # the payment pointer, $host/token
    asset_code: str
    asset_scale: int


def payee_summary(
    view: dict[str, object], record: PointerRecord, pointer: str, now: datetime
) -> PayeeSummary:
    """`view` is the pointer's API view (`pointer_view`): the page states what the API states."""
    terms = record.terms
    code, scale = terms.asset_code, terms.asset_scale

    def money(amount: object) -> str:
        return format_money(int(str(amount)), scale, code)

    state = str(view["state"])
    c = current_cycle(record.version, now)
    return PayeeSummary(
        title=record.description or "Pull payment",
        description=record.description,
        metadata=None if not record.metadata else json.dumps(record.metadata, indent=2, ensure_ascii=False),
        terms=f"{money(terms.amount)} {every(terms.interval)}, {plural(terms.cycles, 'cycle')}",
        carry_over=(
            "Allowance not pulled within its cycle lapses when the cycle ends."
            if terms.cap
            else "Allowance not pulled stays available in later cycles."
        ),
        state=state,
        state_text=_state_text(state, view, record),
        available=money(view["balanceAvailable"]),
        cycle=None
        if c == 0
        else f"cycle {min(c, terms.cycles):,} of {terms.cycles:,}" + _beyond(c, terms.cycles),
        next_cycle=_next_cycle(record, c, state),
        pulled_total=money(view["balanceTotal"]),
        expiry=None if terms.expiry is None else moment(terms.expiry),
        pointer=pointer,
        asset_code=code,
        asset_scale=scale,
    )


def pull_lines(pulls: list[PullRecord], record: PointerRecord) -> list[PullLine]:
    code, scale = record.terms.asset_code, record.terms.asset_scale
    return [
        PullLine(
            when=moment(pull.created_at),
            amount=format_money(pull.amount, scale, code),
            cycle=pull.cycle,
            kind=PULL_KINDS.get(pull.kind, pull.kind),
        )
        for pull in pulls
    ]


def _beyond(c: int, cycles: int) -> str:
    return "" if c <= cycles else " (the last cycle is over)"


def _state_text(state: str, view: dict[str, object], record: PointerRecord) -> str:
    if state == "paused":
        resumes = view.get("resumesAt")
        if isinstance(resumes, str):
            return f"Paused until {moment(parse_timestamp(resumes, 'resumesAt'))}"
        return "Paused until the payer resumes it"
    if state == "pending":
        return f"Starts {moment(record.terms.start)}"
    if state == "cancelled" and record.cancelled_at is not None:
        return f"Cancelled on {moment(record.cancelled_at)}"
    if state == "expired" and record.terms.expiry is not None:
        return f"Expired on {moment(record.terms.expiry)}"
    return {"active": "Active", "ended": "Ended: all cycles are over"}.get(state, state.capitalize())


def _next_cycle(record: PointerRecord, c: int, state: str) -> str | None:
    terms = record.terms
    if state in ("cancelled", "expired"):
        return None
    if c == 0:
        return f"Cycle 1 starts {moment(terms.start)}"
    if c >= terms.cycles:
        return None
    starts = global_cycle_window(record.version, c)[1]
    if terms.expiry is not None and starts >= terms.expiry:
        return None
    pause = record.version.pause
    unless = (
        " (it grants nothing if the pause still holds then)"
        if pause is not None and pause.covers(starts)
        else ""
    )
    return f"Cycle {c + 1:,} starts {moment(starts)}{unless}"
