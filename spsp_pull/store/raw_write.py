"""The statements of a pull's write transactions (`Database.raw_write()`), without the ORM: on the driver
itself where the database allows it (a SQLite file on the inline driver, PostgreSQL on asyncpg), else as
`text()` on the SQLAlchemy connection of a `Database.write()` transaction."""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Dialect, Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from spsp_pull.store.lookups import Lookups
from spsp_pull.store.row_shape import RowReader
from spsp_pull.store.types import Amount, UTCDateTime

_T = TypeVar("_T")
_PARAMETER = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


class RawWrite(ABC):
    """The statements of one `Database.raw_write()` transaction. SQL is written once for every backend with
    `:name` parameters; values go in as the driver stores them (`amount`, `time`); `FOR UPDATE` is added
    where the backend has it (SQLite's BEGIN IMMEDIATE locks the whole file)."""

    @abstractmethod
    def amount(self, value: int) -> Any: ...

    @abstractmethod
    def time(self, value: datetime) -> Any: ...

    @abstractmethod
    async def fetchrow(self, sql: str, *, lock: bool = False, **params: Any) -> Sequence[Any] | None: ...

    @abstractmethod
    async def execute(self, sql: str, **params: Any) -> int:
        """The statement's row count."""

    @abstractmethod
    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[_T], *, lock: bool = False
    ) -> _T | None:
        """`Database.select_one` within this transaction (`lock`: the row stays locked until it ends)."""


class SqliteRawWrite(RawWrite):
    """On the sqlite3 connection of the inline driver's writer."""

    def __init__(self, lookups: Lookups, connection: sqlite3.Connection) -> None:
        self._lookups = lookups
        self._conn = connection

    def amount(self, value: int) -> Any:
        return str(value)

    def time(self, value: datetime) -> Any:
        # As SQLAlchemy's SQLite DATETIME stores it: compared as text, so always with the microseconds.
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    async def fetchrow(self, sql: str, *, lock: bool = False, **params: Any) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._conn.execute(sql, params).fetchone()
        return row

    async def execute(self, sql: str, **params: Any) -> int:
        return self._conn.execute(sql, params).rowcount

    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[_T], *, lock: bool = False
    ) -> _T | None:
        lookup = self._lookups.raw(table, column)
        raw = self._conn.execute(lookup.sql, (value,)).fetchone()
        return None if raw is None else lookup.reader(reader)(raw)


class PostgresRawWrite(RawWrite):
    """On an asyncpg connection of the `Database`'s pool, in its transaction (prepared statements)."""

    _numbered: dict[str, tuple[str, tuple[str, ...]]] = {}  # SQL text -> numbered text, parameter names

    def __init__(self, lookups: Lookups, pool: Any, connection: Any) -> None:
        self._lookups = lookups
        self._pool = pool
        self._conn = connection

    def amount(self, value: int) -> Any:
        return value

    def time(self, value: datetime) -> Any:
        return value

    @classmethod
    def _positional(cls, sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """`:name` parameters as asyncpg's `$n` (each name numbered once, by first appearance)."""
        numbered = cls._numbered.get(sql)
        if numbered is None:
            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}"

            numbered = cls._numbered[sql] = (_PARAMETER.sub(number, sql), tuple(names))
        text_, names_ = numbered
        return text_, [params[name] for name in names_]

    async def fetchrow(self, sql: str, *, lock: bool = False, **params: Any) -> Sequence[Any] | None:
        query, args = self._positional(sql + (" FOR UPDATE" if lock else ""), params)
        row: Sequence[Any] | None = await self._conn.fetchrow(query, *args)
        return row

    async def execute(self, sql: str, **params: Any) -> int:
        query, args = self._positional(sql, params)
        status: str = await self._conn.execute(query, *args)
        return int(status.rsplit(" ", 1)[-1])

    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[_T], *, lock: bool = False
    ) -> _T | None:
        lookup = await self._lookups.prepared(self._pool, table, column, held=self._conn)
        raw = await self._conn.fetchrow(lookup.sql + (" FOR UPDATE" if lock else ""), value)
        return None if raw is None else lookup.reader(reader)(raw)


class ConnectionRawWrite(RawWrite):
    """On the SQLAlchemy connection of a `Database.write()` transaction: the same SQL as `text()`, values
    bound as the column types bind them for the dialect, rows as the driver returns them. For a database the
    driver-level writers do not serve: SQLite on aiosqlite (`SPSP_SQLITE_DRIVER=aiosqlite`) or in memory
    (which lives in the engine's one connection), PostgreSQL on a driver other than asyncpg."""

    def __init__(self, lookups: Lookups, connection: AsyncConnection) -> None:
        dialect = connection.dialect
        self._lookups = lookups
        self._conn = connection
        self._amount = _binder(Amount(), dialect)
        self._time = _binder(UTCDateTime(), dialect)
        self._for_update = "" if dialect.name == "sqlite" else " FOR UPDATE"

    def amount(self, value: int) -> Any:
        return self._amount(value)

    def time(self, value: datetime) -> Any:
        return self._time(value)

    async def fetchrow(self, sql: str, *, lock: bool = False, **params: Any) -> Sequence[Any] | None:
        result = await self._conn.execute(text(sql + (self._for_update if lock else "")), params)
        return result.first()

    async def execute(self, sql: str, **params: Any) -> int:
        return (await self._conn.execute(text(sql), params)).rowcount

    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[_T], *, lock: bool = False
    ) -> _T | None:
        statement = select(table).where(table.c[column] == value)
        raw = (await self._conn.execute(statement.with_for_update() if lock else statement)).first()
        return None if raw is None else self._lookups.converted(table, column).reader(reader)(raw)


def _binder(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """A value as `column_type` hands it to the dialect's driver."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else lambda value: value
