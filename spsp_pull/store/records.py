"""What the store hands out: plain immutable records built from rows, holding domain objects."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import inspect

from spsp_pull.domain.agreement import Pause, Terms, Usage, Version
from spsp_pull.domain.duration import Interval, parse_interval
from spsp_pull.store import models
from spsp_pull.store.row_shape import RowShape


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


class VersionColumns(NamedTuple):
    """The columns of `pointers` one agreement version is made of, by name (`version`: its number)."""

    version: int
    asset_code: str
    asset_scale: int
    amount: int
    interval: str
    cycles: int
    cap: bool
    start: datetime
    expiry: datetime | None
    anchor: datetime
    base_cycle: int
    carry: int
    schedule_origin: datetime | None
    pause_since: datetime | None
    pause_until: datetime | None


class PointerColumns(NamedTuple):
    """The columns of `pointers` a record is made of besides its version and creation time, by name.

    Rows are picked by these names and read by attribute, so the order of the fields means nothing."""

    id: int
    token: str
    tag: str
    account_id: int
    origin: str
    jwt_id: str | None
    cancelled_at: datetime | None
    webhook: str | None
    description: str | None
    metadata: dict[str, object] | None
    pulled_total: int
    used_since_anchor: int
    used_in_cycle: int
    usage_cycle: int
    reserved_total: int


_ATTRIBUTE_OF_COLUMN = {column.name: key for key, column in inspect(models.Pointer).columns.items()}
_pointer_columns_of = operator.attrgetter(*(_ATTRIBUTE_OF_COLUMN[name] for name in PointerColumns._fields))
"""The ORM attributes of the `PointerColumns` (a name that is no column fails here, at import)."""

_VERSIONS_CACHED = 10_000  # per lookup (a table's column)


def make_version(columns: VersionColumns) -> Version:
    return Version(
        terms=Terms(
            amount=columns.amount,
            asset_code=columns.asset_code,
            asset_scale=columns.asset_scale,
            interval=parsed_interval(columns.interval),
            cycles=columns.cycles,
            cap=bool(columns.cap),
            start=columns.start,
            expiry=columns.expiry,
        ),
        number=columns.version,
        anchor=columns.anchor,
        base_cycle=columns.base_cycle,
        carry=columns.carry,
        schedule_origin=columns.schedule_origin,
        pause=None if columns.pause_since is None else Pause(columns.pause_since, columns.pause_until),
    )


def make_pointer_record(columns: PointerColumns, *, created_at: datetime, version: Version) -> PointerRecord:
    return PointerRecord(
        id=columns.id,
        token=columns.token,
        tag=columns.tag,
        account_id=columns.account_id,
        origin=columns.origin,
        jwt_id=columns.jwt_id,
        created_at=created_at,
        cancelled_at=columns.cancelled_at,
        webhook=columns.webhook,
        description=columns.description,
        metadata=columns.metadata,
        version=version,
        usage=Usage(
            pulled_total=columns.pulled_total,
            used_since_anchor=columns.used_since_anchor,
            used_in_cycle=columns.used_in_cycle,
            cycle=columns.usage_cycle,
        ),
        reserved_total=columns.reserved_total,
    )


def version_of(row: models.AgreementTerms, *, asset_code: str, asset_scale: int, number: int) -> Version:
    return make_version(version_columns(row, asset_code=asset_code, asset_scale=asset_scale, number=number))


def version_columns(
    row: models.AgreementTerms, *, asset_code: str, asset_scale: int, number: int
) -> VersionColumns:
    """The columns of version `number` of a pointer in `asset_code`/`asset_scale` whose terms `row` holds."""
    return VersionColumns(
        version=number,
        asset_code=asset_code,
        asset_scale=asset_scale,
        amount=row.amount,
        interval=row.interval,
        cycles=row.cycles,
        cap=row.cap,
        start=row.start,
        expiry=row.expiry,
        anchor=row.anchor,
        base_cycle=row.base_cycle,
        carry=row.carry,
        schedule_origin=row.schedule_origin,
        pause_since=row.pause_since,
        pause_until=row.pause_until,
    )


@functools.lru_cache(maxsize=4096)
def parsed_interval(text: str) -> Interval:
    """Parsed intervals, remembered (an Interval is immutable; a few distinct texts cover most pointers)."""
    return parse_interval(text)


def pointer_record(row: models.Pointer) -> PointerRecord:
    version = version_of(row, asset_code=row.asset_code, asset_scale=row.asset_scale, number=row.version)
    return make_pointer_record(
        PointerColumns._make(_pointer_columns_of(row)), created_at=row.created_at, version=version
    )


def pointer_reader(shape: RowShape) -> Callable[[Sequence[Any]], PointerRecord]:
    """`pointer_record` for the raw rows of a lookup of pointers (a `RowReader`).

    A pointer's creation time never changes, nor does a version once written (a change is a new version), so
    the two are remembered by the raw values of the columns they are made of: a repeated read converts only
    the columns that do change. Every column is picked from the row by its name.
    """
    fixed_names = ("created_at", *VersionColumns._fields)
    fixed_key = operator.itemgetter(*(shape.position(name) for name in fixed_names))
    fixed = shape.subset(fixed_names)
    created_at_of = fixed.values(["created_at"])
    version_columns_of = fixed.values(VersionColumns._fields)
    pointer_columns_of = shape.values(PointerColumns._fields)
    pointer_columns = PointerColumns._make

    @functools.lru_cache(maxsize=_VERSIONS_CACHED)
    def created_at_and_version(key: tuple[Any, ...]) -> tuple[datetime, Version]:
        (created_at,) = created_at_of(key)
        return created_at, make_version(VersionColumns._make(version_columns_of(key)))

    def read(raw: Sequence[Any]) -> PointerRecord:
        created_at, version = created_at_and_version(fixed_key(raw))
        return make_pointer_record(
            pointer_columns(pointer_columns_of(raw)), created_at=created_at, version=version
        )

    return read


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
    row.pause_since = None if version.pause is None else version.pause.since
    row.pause_until = None if version.pause is None else version.pause.until
    if isinstance(row, models.Pointer):
        row.version = version.number
    else:
        row.number = version.number


def apply_usage(row: models.Pointer, usage: Usage) -> None:
    row.pulled_total = usage.pulled_total
    row.used_since_anchor = usage.used_since_anchor
    row.used_in_cycle = usage.used_in_cycle
    row.usage_cycle = usage.cycle
