"""JSON shapes the API answers with. Amounts are integer strings; times ISO 8601 UTC with `Z`."""

from __future__ import annotations

import base64
from datetime import datetime

from spsp_pull.config import Config
from spsp_pull.domain.agreement import Balance, Version, balance, paused, resumes_at, state
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.ilp.receiver_address import ReceiverDetails
from spsp_pull.store.pointers import EventData
from spsp_pull.store.records import PointerRecord, PullRecord, VersionRecord


def _time(value: datetime | None) -> str | None:
    return None if value is None else isoformat_z(value)


def pointer_path(record: PointerRecord) -> str:
    return record.token


def pointer_view(config: Config, record: PointerRecord, now: datetime) -> dict[str, object]:
    """The management view of a pointer, with the field names of the existing pull servers' responses
    (`balanceTotal`, `cycleCurrent`, ...) so their clients keep working."""
    terms = record.terms
    current = balance(record.version, record.usage, now, record.cancelled_at)
    return {
        "pointer": config.pointer(pointer_path(record)),
        "url": config.url(pointer_path(record)),
        "token": record.token,
        "origin": record.origin,
        "state": state(record.version, now, record.cancelled_at),
        "amount": str(terms.amount),
        "assetCode": terms.asset_code,
        "assetScale": terms.asset_scale,
        "interval": terms.interval.iso(),
        "cycles": terms.cycles,
        "cap": terms.cap,
        "start": _time(terms.start),
        "expiry": _time(terms.expiry),
        "balanceTotal": str(current.total),
        "balanceInterval": str(current.interval),
        "balanceAvailable": str(current.available),
        "balanceReserved": str(record.reserved_total),
        "cycleCurrent": current.cycle,
        "version": record.version.number,
        "webhook": record.webhook,
        "description": record.description,
        "metadata": record.metadata,
        "createdAt": _time(record.created_at),
        "cancelledAt": _time(record.cancelled_at),
        **pause_view(record.version, now),
    }


def pointer_event_data(config: Config) -> EventData:
    """What events about a pointer carry as `data`: the pointer as `pointer_view` shows it."""
    return lambda record, now: pointer_view(config, record, now)


def pause_view(version: Version, now: datetime) -> dict[str, object]:
    """`pausedSince` and `resumesAt` (null: until the payer resumes) while a pause holds; both null else."""
    since = version.pause.since if version.pause is not None and paused(version, now) else None
    return {"pausedSince": _time(since), "resumesAt": _time(resumes_at(version, now))}


def version_view(record: VersionRecord) -> dict[str, object]:
    version = record.version
    terms = version.terms
    return {
        "version": version.number,
        "reason": record.reason,
        "createdAt": _time(record.created_at),
        "amount": str(terms.amount),
        "interval": terms.interval.iso(),
        "cycles": terms.cycles,
        "cap": terms.cap,
        "start": _time(terms.start),
        "expiry": _time(terms.expiry),
        "anchor": _time(version.anchor),
        "baseCycle": version.base_cycle,
        "carry": str(version.carry),
        "pausedSince": _time(None if version.pause is None else version.pause.since),
        "pausedUntil": _time(None if version.pause is None else version.pause.until),
    }


def pull_view(record: PullRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "reservationId": record.reservation_id,
        "amount": str(record.amount),
        "kind": record.kind,
        "cycle": record.cycle,
        "createdAt": _time(record.created_at),
    }


def agreement_view(version: Version) -> dict[str, object]:
    terms = version.terms
    view: dict[str, object] = {
        "amount": str(terms.amount),
        "start": isoformat_z(terms.start),
        "interval": terms.interval.iso(),
        "cycles": terms.cycles,
        "cap": terms.cap,
        "asset": {"code": terms.asset_code, "scale": terms.asset_scale},
    }
    if terms.expiry is not None:
        view["expiry"] = isoformat_z(terms.expiry)
    return view


def spsp_view(receiver: ReceiverDetails, record: PointerRecord | None, now: datetime) -> dict[str, object]:
    """An SPSP (RFC 0009) answer; for a pull pointer with the `pull` object of RFC 0036."""
    view: dict[str, object] = {
        "destination_account": receiver.destination_account,
        "shared_secret": base64.b64encode(receiver.shared_secret).decode("ascii"),
    }
    if record is not None:
        current: Balance = balance(record.version, record.usage, now, record.cancelled_at)
        pull: dict[str, object] = {
            "balance": {
                "total": str(current.total),
                "interval": str(current.interval),
                "available": str(current.available),
            },
            "cycle": current.cycle,
            "state": state(record.version, now, record.cancelled_at),
            "agreement": agreement_view(record.version),
        }
        if paused(record.version, now):
            pull["resumesAt"] = _time(resumes_at(record.version, now))
        view["pull"] = pull
    return view


def webhook_body(config: Config, record: PointerRecord, now: datetime) -> dict[str, object]:
    """What a pull's webhook carries: the fields the existing pull servers send, then ours."""
    current = balance(record.version, record.usage, now, record.cancelled_at)
    return {
        "balanceTotal": str(current.total),
        "balanceInterval": str(current.interval),
        "pointer": config.pointer(pointer_path(record)),
        "balanceAvailable": str(current.available),
        "cycleCurrent": current.cycle,
        "assetCode": record.terms.asset_code,
        "assetScale": record.terms.asset_scale,
        "event": "pull.completed",
        "timestamp": isoformat_z(now),
    }
