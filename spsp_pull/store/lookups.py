"""Prepared single-row SELECTs by a unique column (`Database.select_one`, `RawWrite.select_one`), made once
per table and column for each way rows arrive: raw from sqlite3, typed by asyncpg, or converted by
SQLAlchemy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Dialect, Table, bindparam, select

from spsp_pull.store.row_shape import RowReader, RowShape

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Lookup:
    """A prepared single-row SELECT: its SQL, the shape of its rows, and the row readers made for it."""

    sql: str
    shape: RowShape
    readers: dict[RowReader[Any], Callable[[Sequence[Any]], Any]] = field(default_factory=dict)

    def reader(self, make: RowReader[_T]) -> Callable[[Sequence[Any]], _T]:
        read = self.readers.get(make)
        if read is None:
            read = self.readers[make] = make(self.shape)
        return read


def make_lookup(
    dialect: Dialect, table: Table, column: str, coltypes: list[Any] | None, *, processors: bool = True
) -> Lookup:
    """The lookup of `table`'s row by `column`. Its processors are the column types' result processors for
    the driver's type codes `coltypes` (None: unknown), or none at all (`processors=False`)."""
    statement = select(*table.columns).where(table.c[column] == bindparam("value"))
    types = coltypes or [None] * len(table.columns)
    return Lookup(
        str(statement.compile(dialect=dialect)),
        RowShape(
            tuple(c.name for c in table.columns),
            tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, coltype) if processors else None
                for c, coltype in zip(table.columns, types, strict=True)
            ),
        ),
    )


class Lookups:
    """The lookups of one engine, each made once."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._made: dict[tuple[str, str, str], Lookup] = {}

    def raw(self, table: Table, column: str) -> Lookup:
        """For rows of the driver's own values (sqlite3): the column types convert them."""
        key = ("raw", table.name, column)
        lookup = self._made.get(key)
        if lookup is None:
            lookup = self._made[key] = make_lookup(self._dialect, table, column, None)
        return lookup

    def converted(self, table: Table, column: str) -> Lookup:
        """For rows that come through SQLAlchemy, their values converted already."""
        key = ("converted", table.name, column)
        lookup = self._made.get(key)
        if lookup is None:
            lookup = self._made[key] = make_lookup(self._dialect, table, column, None, processors=False)
        return lookup

    async def prepared(self, pool: Any, table: Table, column: str, held: Any = None) -> Lookup:
        """For asyncpg rows: the column types come from the prepared statement (their OIDs choose the result
        processors, as the type codes of a cursor description do in SQLAlchemy). Prepared on `held` (a
        connection the caller holds: taking a second one from the pool could wait for itself) or on one from
        `pool`."""
        key = ("prepared", table.name, column)
        lookup = self._made.get(key)
        if lookup is None:
            if held is not None:
                lookup = await self._prepare(held, table, column)
            else:
                async with pool.acquire() as conn:
                    lookup = await self._prepare(conn, table, column)
            self._made[key] = lookup
        return lookup

    async def _prepare(self, conn: Any, table: Table, column: str) -> Lookup:
        sql = make_lookup(self._dialect, table, column, None, processors=False).sql
        statement = await conn.prepare(sql)
        oids = [attribute.type.oid for attribute in statement.get_attributes()]
        return make_lookup(self._dialect, table, column, oids)
