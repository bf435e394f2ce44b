"""What the store hands out: plain immutable records built from rows, holding domain objects."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column

from spsp_pull.domain.agreement import Terms, Usage, Version
from spsp_pull.domain.duration import Interval, parse_interval
from spsp_pull.store import models
from spsp_pull.store.database import RowShape


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


_VERSION_FIELDS = (
    "asset_code",
    "asset_scale",
    "amount",
    "interval",
    "cycles",
    "cap",
    "start",
    "expiry",
    "anchor",
    "base_cycle",
    "carry",
    "schedule_origin",
)
"""`make_version`'s parameters after `number`, as attributes of `models.Pointer`."""

_RECORD_FIELDS = (
    "id",
    "token",
    "tag",
    "account_id",
    "origin",
    "jwt_id",
    "cancelled_at",
    "webhook",
    "description",
    "metadata_json",
    "pulled_total",
    "used_since_anchor",
    "used_in_cycle",
    "usage_cycle",
    "reserved_total",
)
"""`make_pointer_record`'s parameters after `created_at` and `version`, as attributes of `models.Pointer`."""

_terms_of = operator.attrgetter(*_VERSION_FIELDS[2:])
_record_fields_of = operator.attrgetter(*_RECORD_FIELDS)

_VERSIONS_CACHED = 10_000  # per lookup (a table's column)


def make_version(
    number: int,
    asset_code: str,
    asset_scale: int,
    amount: int,
    interval: str,
    cycles: int,
    cap: bool,
    start: datetime,
    expiry: datetime | None,
    anchor: datetime,
    base_cycle: int,
    carry: int,
    schedule_origin: datetime | None,
) -> Version:
    return Version(
        terms=Terms(
            amount=amount,
            asset_code=asset_code,
            asset_scale=asset_scale,
            interval=parsed_interval(interval),
            cycles=cycles,
            cap=bool(cap),
            start=start,
            expiry=expiry,
        ),
        number=number,
        anchor=anchor,
        base_cycle=base_cycle,
        carry=carry,
        schedule_origin=schedule_origin,
    )


def make_pointer_record(
    created_at: datetime,
    version: Version,
    pointer_id: int,
    token: str,
    tag: str,
    account_id: int,
    origin: str,
    jwt_id: str | None,
    cancelled_at: datetime | None,
    webhook: str | None,
    description: str | None,
    metadata: dict[str, object] | None,
    pulled_total: int,
    used_since_anchor: int,
    used_in_cycle: int,
    usage_cycle: int,
    reserved_total: int,
) -> PointerRecord:
    return PointerRecord(
        id=pointer_id,
        token=token,
        tag=tag,
        account_id=account_id,
        origin=origin,
        jwt_id=jwt_id,
        created_at=created_at,
        cancelled_at=cancelled_at,
        webhook=webhook,
        description=description,
        metadata=metadata,
        version=version,
        usage=Usage(
            pulled_total=pulled_total,
            used_since_anchor=used_since_anchor,
            used_in_cycle=used_in_cycle,
            cycle=usage_cycle,
        ),
        reserved_total=reserved_total,
    )


def version_of(row: models.AgreementTerms, *, asset_code: str, asset_scale: int, number: int) -> Version:
    return make_version(number, asset_code, asset_scale, *_terms_of(row))


@functools.lru_cache(maxsize=4096)
def parsed_interval(text: str) -> Interval:
    """Parsed intervals, remembered (an Interval is immutable; a few distinct texts cover most pointers)."""
    return parse_interval(text)


def pointer_record(row: models.Pointer) -> PointerRecord:
    version = version_of(row, asset_code=row.asset_code, asset_scale=row.asset_scale, number=row.version)
    return make_pointer_record(row.created_at, version, *_record_fields_of(row))


def pointer_reader(shape: RowShape) -> Callable[[Sequence[Any]], PointerRecord]:
    """`pointer_record` for the raw rows of a lookup of pointers (a `RowReader`).

    A pointer's creation time never changes, nor does a version once written (a change is a new version), so
    the two are remembered by the raw values of the columns they are made of: a repeated read converts only
    the columns that do change.
    """
    fixed = shape.subset([_column_name(name) for name in ("created_at", "version", *_VERSION_FIELDS)])
    fixed_key = operator.itemgetter(*(shape.position(name) for name in fixed.names))
    fixed_values = fixed.values(fixed.names)
    record_values = shape.values([_column_name(name) for name in _RECORD_FIELDS])

    @functools.lru_cache(maxsize=_VERSIONS_CACHED)
    def created_at_and_version(key: tuple[Any, ...]) -> tuple[datetime, Version]:
        created_at, *version = fixed_values(key)
        return created_at, make_version(*version)

    def read(raw: Sequence[Any]) -> PointerRecord:
        return make_pointer_record(*created_at_and_version(fixed_key(raw)), *record_values(raw))

    return read


def _column_name(attribute: str) -> str:
    column = getattr(models.Pointer, attribute).expression
    assert isinstance(column, Column)
    return column.name


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
