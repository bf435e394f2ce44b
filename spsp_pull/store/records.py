"""What the store hands out: plain immutable records built from rows, holding domain objects."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from spsp_pull.domain.agreement import Terms, Usage, Version
from spsp_pull.domain.duration import Interval, parse_interval
from spsp_pull.store import models


@dataclass(frozen=True, slots=True)
class PointerRecord:
    id: int
    token: str
    tag: str
    account_id: int
    origin: str
    jwt_id: str | None
    created_at: datetime
    cancelled_at: datetime | None
    webhook: str | None
    description: str | None
    metadata: dict[str, object] | None
    version: Version
    usage: Usage
    reserved_total: int

    @property
    def terms(self) -> Terms:
        return self.version.terms


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: Version
    created_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class PullRecord:
    id: int
    amount: int
    kind: str
    cycle: int
    created_at: datetime
    reservation_id: int | None


def version_of(row: models.AgreementTerms, *, asset_code: str, asset_scale: int, number: int) -> Version:
    return Version(
        terms=Terms(
            amount=row.amount,
            asset_code=asset_code,
            asset_scale=asset_scale,
            interval=parsed_interval(row.interval),
            cycles=row.cycles,
            cap=bool(row.cap),
            start=row.start,
            expiry=row.expiry,
        ),
        number=number,
        anchor=row.anchor,
        base_cycle=row.base_cycle,
        carry=row.carry,
        schedule_origin=row.schedule_origin,
    )


def usage_of(row: models.Pointer) -> Usage:
    return Usage(
        pulled_total=row.pulled_total,
        used_since_anchor=row.used_since_anchor,
        used_in_cycle=row.used_in_cycle,
        cycle=row.usage_cycle,
    )


@functools.lru_cache(maxsize=4096)
def parsed_interval(text: str) -> Interval:
    """Parsed intervals, remembered (an Interval is immutable; a few distinct texts cover most pointers)."""
    return parse_interval(text)


def pointer_record(row: models.Pointer) -> PointerRecord:
    return PointerRecord(
        id=row.id,
        token=row.token,
        tag=row.tag,
        account_id=row.account_id,
        origin=row.origin,
        jwt_id=row.jwt_id,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
        webhook=row.webhook,
        description=row.description,
        metadata=row.metadata_json,
        version=version_of(row, asset_code=row.asset_code, asset_scale=row.asset_scale, number=row.version),
        usage=usage_of(row),
        reserved_total=row.reserved_total,
    )


class _ColumnValues:
    """A row read as a mapping by column name, seen through the model's attribute names."""

    __slots__ = ("_values",)
    _RENAMED: ClassVar[dict[str, str]] = {"metadata_json": "metadata"}

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        return self._values[self._RENAMED.get(name, name)]


def pointer_record_from_columns(values: Mapping[str, Any]) -> PointerRecord:
    """`pointer_record` for a row fetched without the ORM (a mapping of column names to values)."""
    return pointer_record(cast(models.Pointer, _ColumnValues(values)))


def apply_version(row: models.Pointer | models.PointerVersion, version: Version) -> None:
    terms = version.terms
    row.amount = terms.amount
    row.interval = terms.interval.iso()
    row.cycles = terms.cycles
    row.cap = terms.cap
    row.start = terms.start
    row.expiry = terms.expiry
    row.anchor = version.anchor
    row.base_cycle = version.base_cycle
    row.carry = version.carry
    row.schedule_origin = version.schedule_origin
    if isinstance(row, models.Pointer):
        row.version = version.number
    else:
        row.number = version.number


def apply_usage(row: models.Pointer, usage: Usage) -> None:
    row.pulled_total = usage.pulled_total
    row.used_since_anchor = usage.used_since_anchor
    row.used_in_cycle = usage.used_in_cycle
    row.usage_cycle = usage.cycle
