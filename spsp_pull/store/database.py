"""Engine set-up for SQLite (the embedded default) and PostgreSQL, transactions, and migrations on start."""

from __future__ import annotations

import asyncio
import json
import operator
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, overload

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Dialect, Table, bindparam, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from spsp_pull.metrics import Metrics

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_ID = 0x5_9_5_0  # PostgreSQL advisory lock held while migrating
_SQLITE_READER_BUSY_MS = 5000
_AFTER_COMMIT = "after_commit"  # session.info key

Processor = Callable[[Any], Any] | None
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RowShape:
    """The columns of a lookup's rows, in order, and how each one's raw value becomes a Python value (`None`:
    it is one already). A processor is never given `None`."""

    names: tuple[str, ...]
    processors: tuple[Processor, ...]

    def position(self, name: str) -> int:
        return self.names.index(name)

    def converter(self, name: str) -> Processor:
        return self.processors[self.position(name)]

    def subset(self, names: Sequence[str]) -> RowShape:
        """The shape of rows made of the columns `names` of these."""
        return RowShape(tuple(names), tuple(self.converter(name) for name in names))

    def values(self, names: Sequence[str]) -> Callable[[Sequence[Any]], list[Any]]:
        """A function from a raw row to the Python values of the columns `names`, in that order."""
        positions = [self.position(name) for name in names]
        pick = operator.itemgetter(*positions)
        take = pick if len(positions) > 1 else lambda raw: (pick(raw),)
        convert = [
            (i, process) for i, name in enumerate(names) if (process := self.converter(name)) is not None
        ]

        def values(raw: Sequence[Any]) -> list[Any]:
            result = list(take(raw))
            for i, process in convert:
                if (value := result[i]) is not None:
                    result[i] = process(value)
            return result

        return values


RowReader = Callable[[RowShape], Callable[[Sequence[Any]], _T]]
"""Given a lookup's row shape (once per lookup), the function that turns its raw rows into `_T`s."""


@dataclass(frozen=True, slots=True)
class _Lookup:
    """A prepared single-row SELECT: its SQL, the shape of its rows, and the row readers made for it."""

    sql: str
    shape: RowShape
    readers: dict[RowReader[Any], Callable[[Sequence[Any]], Any]] = field(default_factory=dict)

    def reader(self, make: RowReader[_T]) -> Callable[[Sequence[Any]], _T]:
        read = self.readers.get(make)
        if read is None:
            read = self.readers[make] = make(self.shape)
        return read


def _mapping_reader(shape: RowShape) -> Callable[[Sequence[Any]], dict[str, Any]]:
    values = shape.values(shape.names)
    return lambda raw: dict(zip(shape.names, values(raw), strict=True))


class Database:
    """One engine per process. `read()` and `write()` open a transaction; `write()` takes SQLite's write lock
    up front (BEGIN IMMEDIATE), so a read-then-write never fails half way with "database is locked"."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, schema: str | None = None
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            path = parsed.database
            if path and path != ":memory:" and not path.startswith("file:"):
                # Statements run in the event loop's thread (see _InlineSqlite), not in aiosqlite's.
                kwargs["async_creator"] = lambda: _InlineSqlite.connect(path)
            else:
                kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
            if schema is not None:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._schema = schema
        self._pool_size = pool_size
        self._lookups: dict[tuple[str, str], _Lookup] = {}
        self._sqlite_path = parsed.database if self.dialect == "sqlite" else None
        self._sqlite_reader: sqlite3.Connection | None = None
        self._sqlite_raw: _InlineSqlite | None = None
        self._pg_pool: Any = None
        self._pg_pool_ready: asyncio.Future[Any] | None = None
        # SQLite has one writer at a time: writers of this process queue here rather than in SQLite's busy
        # handler (which sleeps in steps of up to 100 ms while the lock is taken).
        self._sqlite_write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sqlite_writer: asyncio.Task[Any] | None = None
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        self.metrics = Metrics()  # what the server counts: the one registry every part that has `db` reaches
        self.metrics.watch_pool("sqlalchemy", self._engine_connections_in_use)
        self.metrics.watch_pool("asyncpg", self._asyncpg_connections_in_use)

    def _engine_connections_in_use(self) -> int:
        checked_out = getattr(self.engine.pool, "checkedout", None)
        return int(checked_out()) if checked_out is not None else 0

    def _asyncpg_connections_in_use(self) -> int:
        pool = self._pg_pool
        return 0 if pool is None else int(pool.get_size() - pool.get_idle_size())

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success. Rows read with `lock()` stay locked until it ends."""
        if self._sqlite_write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            _run_after_commit(session)
            return
        await self._acquire_sqlite_write_lock(self._sqlite_write_lock)
        try:
            async with self._sessions() as session, session.begin():
                await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
                yield session
        finally:
            self._sqlite_writer = None
            self._sqlite_write_lock.release()
        _run_after_commit(session)

    async def _acquire_sqlite_write_lock(self, lock: asyncio.Lock) -> None:
        """As SQLite's own busy timeout did: give up with "database is locked" after 30 s, and at once for a
        write transaction opened inside another one of the same task (which would wait for itself)."""
        task = asyncio.current_task()
        if task is not None and self._sqlite_writer is task:
            raise sqlite3.OperationalError("database is locked (a write transaction inside another one)")
        try:
            async with asyncio.timeout(_InlineSqlite.LOCK_WAIT.total_seconds()):
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._sqlite_writer = task

    @overload
    async def select_one(self, table: Table, column: str, value: object) -> dict[str, Any] | None: ...

    @overload
    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[_T]
    ) -> _T | None: ...

    async def select_one(
        self, table: Table, column: str, value: object, reader: RowReader[Any] = _mapping_reader
    ) -> Any:
        """The row of `table` whose `column` (a unique one) equals `value`, with the column types applied as
        SQLAlchemy applies them, outside any transaction: by column name, or as `reader` makes it.

        The hot read path (SPSP queries, STREAM connections): no ORM and no pooled-connection ping or reset.
        SQLite reads run inline on a connection of their own (in WAL mode a reader never waits for a
        writer); PostgreSQL reads go straight to asyncpg."""
        key = (table.name, column)
        lookup = self._lookups.get(key)
        if self._sqlite_path not in (None, "", ":memory:"):
            lookup = self._sqlite_lookup(table, column)
            raw = self._reader().execute(lookup.sql, (value,)).fetchone()
        elif self.dialect == "postgresql" and self.engine.dialect.driver == "asyncpg":
            pool = await self._postgres_pool()
            lookup = await self._postgres_lookup_cached(pool, table, column)
            raw = await pool.fetchrow(lookup.sql, value)
        else:
            if lookup is None:  # rows come through SQLAlchemy, their values converted already
                lookup = self._lookups[key] = _make_lookup(
                    self.engine.dialect, table, column, None, processors=False
                )
            async with self.engine.connect() as conn:
                raw = (await conn.execute(select(table).where(table.c[column] == value))).first()
        return None if raw is None else lookup.reader(reader)(raw)

    @asynccontextmanager
    async def raw_write(self) -> AsyncIterator[RawWrite]:
        """A write transaction whose statements go straight to the driver, without the ORM: the pull's
        reservations (a few statements each, many per second). It commits on success, like `write()`, and
        queues on the same lock on SQLite (BEGIN IMMEDIATE on a connection of its own)."""
        if self._sqlite_write_lock is not None and self._sqlite_path not in (None, "", ":memory:"):
            await self._acquire_sqlite_write_lock(self._sqlite_write_lock)
            try:
                writer = self._sqlite_raw_writer()
                await writer.run(writer._conn.execute, "BEGIN IMMEDIATE")
                try:
                    yield _SqliteRawWrite(self, writer._conn)
                except BaseException:
                    writer._conn.rollback()
                    raise
                await writer.commit()
            finally:
                self._sqlite_writer = None
                self._sqlite_write_lock.release()
        elif self.dialect == "postgresql" and self.engine.dialect.driver == "asyncpg":
            pool = await self._postgres_pool()
            async with pool.acquire() as conn, conn.transaction():
                yield _PostgresRawWrite(self, pool, conn)
        else:
            raise NotImplementedError(f"raw writes need a SQLite file or asyncpg, not {self.url}")

    def _sqlite_raw_writer(self) -> _InlineSqlite:
        if self._sqlite_raw is None:
            assert self._sqlite_path is not None
            writer = sqlite3.connect(
                self._sqlite_path, timeout=0, check_same_thread=False, isolation_level=None
            )
            for pragma in ("synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=0"):
                writer.execute(f"PRAGMA {pragma}")
            self._sqlite_raw = _InlineSqlite(writer)
        return self._sqlite_raw

    def _sqlite_lookup(self, table: Table, column: str) -> _Lookup:
        key = (table.name, column)
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = self._lookups[key] = _make_lookup(self.engine.dialect, table, column, None)
        return lookup

    async def _postgres_lookup_cached(
        self, pool: Any, table: Table, column: str, held: Any = None
    ) -> _Lookup:
        """The lookup, prepared on `held` (a connection the caller holds: taking a second one from the pool
        could wait for itself) or on one from `pool`."""
        key = (table.name, column)
        lookup = self._lookups.get(key)
        if lookup is None:
            if held is not None:
                lookup = await self._postgres_lookup(held, table, column)
            else:
                async with pool.acquire() as conn:
                    lookup = await self._postgres_lookup(conn, table, column)
            self._lookups[key] = lookup
        return lookup

    async def _postgres_lookup(self, conn: Any, table: Table, column: str) -> _Lookup:
        """The column types come from the prepared statement (their OIDs choose the result processors, as the
        type codes of a cursor description do in SQLAlchemy)."""
        sql = _make_lookup(self.engine.dialect, table, column, None, processors=False).sql
        statement = await conn.prepare(sql)
        oids = [attribute.type.oid for attribute in statement.get_attributes()]
        return _make_lookup(self.engine.dialect, table, column, oids)

    def _reader(self) -> sqlite3.Connection:
        if self._sqlite_reader is None:
            assert self._sqlite_path is not None
            reader = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
            reader.execute(f"PRAGMA busy_timeout={_SQLITE_READER_BUSY_MS}")
            reader.execute("PRAGMA query_only=ON")
            self._sqlite_reader = reader
        return self._sqlite_reader

    async def _postgres_pool(self) -> Any:
        if self._pg_pool is not None:
            return self._pg_pool
        if self._pg_pool_ready is None:
            self._pg_pool_ready = asyncio.get_running_loop().create_future()
            try:
                self._pg_pool = await _asyncpg_pool(self.url, self._schema, self._pool_size)
            except BaseException as exc:
                self._pg_pool_ready.set_exception(exc)
                self._pg_pool_ready = None
                raise
            self._pg_pool_ready.set_result(self._pg_pool)
            return self._pg_pool
        return await asyncio.shield(self._pg_pool_ready)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when several instances start at once."""
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            else:
                await conn.run_sync(_sqlite_foreign_keys, False)
            try:
                await conn.run_sync(_upgrade)
                await conn.commit()
            finally:
                if not self.is_sqlite:
                    await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
                    await conn.commit()
                else:
                    await conn.run_sync(_sqlite_foreign_keys, True)

    async def close(self) -> None:
        if self._sqlite_reader is not None:
            self._sqlite_reader.close()
            self._sqlite_reader = None
        if self._sqlite_raw is not None:
            self._sqlite_raw.stop()
            self._sqlite_raw = None
        if self._pg_pool is not None:
            pool, self._pg_pool = self._pg_pool, None
            await pool.close()
        await self.engine.dispose()


class RawWrite(ABC):
    """The statements of one `Database.raw_write()` transaction, on the driver itself. SQL is written once
    for both backends with `:name` parameters; values go in as the driver stores them (`amount`, `time`);
    `FOR UPDATE` is added where the backend has it (SQLite's BEGIN IMMEDIATE locks the whole file)."""

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


class _SqliteRawWrite(RawWrite):
    def __init__(self, db: Database, connection: sqlite3.Connection) -> None:
        self._db = db
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
        lookup = self._db._sqlite_lookup(table, column)
        raw = self._conn.execute(lookup.sql, (value,)).fetchone()
        return None if raw is None else lookup.reader(reader)(raw)


class _PostgresRawWrite(RawWrite):
    _numbered: dict[str, tuple[str, tuple[str, ...]]] = {}  # SQL text -> numbered text, parameter names

    def __init__(self, db: Database, pool: Any, connection: Any) -> None:
        self._db = db
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
        lookup = await self._db._postgres_lookup_cached(self._pool, table, column, self._conn)
        raw = await self._conn.fetchrow(lookup.sql + (" FOR UPDATE" if lock else ""), value)
        return None if raw is None else lookup.reader(reader)(raw)


_PARAMETER = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` once the `Database.write()` transaction of `session` has committed (never if it rolls
    back): for counting what a transaction did."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def _run_after_commit(session: AsyncSession) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        action()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Foreign keys off while migrating: SQLite changes a table's constraints by rebuilding it (copy, drop,
    rename), and dropping the old table would otherwise delete or refuse the rows that refer to it. Turned
    back on, they are checked once over the whole database."""
    cursor = connection.connection.cursor()  # the driver's connection: outside any transaction
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        if on:
            cursor.execute("PRAGMA foreign_key_check")
            if (violation := cursor.fetchone()) is not None:
                raise RuntimeError(f"a migration left a row without its parent: {violation}")
    finally:
        cursor.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        inline = isinstance(dbapi_connection.driver_connection, _InlineSqlite)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # The inline driver waits for another process's lock asynchronously (its own retries), never in
        # SQLite's busy handler, which would block the event loop.
        cursor.execute(f"PRAGMA busy_timeout={0 if inline else 30000}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', '')}".strip())


def _make_lookup(
    dialect: Dialect, table: Table, column: str, coltypes: list[Any] | None, *, processors: bool = True
) -> _Lookup:
    statement = select(*table.columns).where(table.c[column] == bindparam("value"))
    types = coltypes or [None] * len(table.columns)
    return _Lookup(
        str(statement.compile(dialect=dialect)),
        RowShape(
            tuple(c.name for c in table.columns),
            tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, coltype) if processors else None
                for c, coltype in zip(table.columns, types, strict=True)
            ),
        ),
    )


async def _asyncpg_pool(url: str, schema: str | None, size: int) -> Any:
    """An asyncpg pool for the lookups: JSON decoded as SQLAlchemy's asyncpg dialect does, the schema on the
    search path, and no reset on release (a lookup leaves no session state behind)."""
    import asyncpg  # the postgres extra

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    async def init(conn: Any) -> None:
        await conn.set_type_codec("json", encoder=str, decoder=json.loads, schema="pg_catalog")
        await conn.set_type_codec("jsonb", encoder=str, decoder=json.loads, schema="pg_catalog")

    async def no_reset(_conn: Any) -> None:
        return None

    settings = {"search_path": schema} if schema is not None else None
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, init=init, reset=no_reset, server_settings=settings
    )


class _InlineSqlite:
    """A SQLite connection with aiosqlite's interface (as SQLAlchemy's aiosqlite dialect uses it) whose
    statements run at once in the calling thread — the event loop's.

    aiosqlite runs each call in a worker thread and hands the result back through the event loop: a dozen
    thread handoffs per transaction, each of which waits for the GIL while the loop is busy (STREAM packets),
    so a 1 ms transaction took 10-20 ms under load. SQLite statements on a local file take microseconds; the
    one thing that may take long, waiting for another process's write lock, is done here with `asyncio.sleep`
    between attempts (busy_timeout is 0), so the loop never blocks on it. Within this process, writers queue
    on `Database`'s lock and never meet the busy state at all.
    """

    LOCK_WAIT = timedelta(seconds=30)  # as the busy timeout it replaces
    _RETRY_DELAYS = tuple(timedelta(milliseconds=ms) for ms in (1, 2, 5, 10, 20))

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = self  # SQLAlchemy sets isolation_level through aiosqlite's queue: `put_nowait` below

    @classmethod
    async def connect(cls, path: str) -> _InlineSqlite:
        return cls(sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None))

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _InlineCursorContext:
        return _InlineCursorContext(self)

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)`; while another process holds the lock, retried after short sleeps."""
        waited = timedelta(0)
        attempt = 0
        while True:
            try:
                return function(*args)
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or waited >= self.LOCK_WAIT:
                    raise
                delay = self._RETRY_DELAYS[min(attempt, len(self._RETRY_DELAYS) - 1)]
                await asyncio.sleep(delay.total_seconds())
                waited += delay
                attempt += 1

    async def commit(self) -> None:
        await self.run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


class _InlineCursorContext:
    """What `connection.cursor()` returns in aiosqlite: entered (awaited) to get the cursor."""

    def __init__(self, connection: _InlineSqlite) -> None:
        self._connection = connection

    async def __aenter__(self) -> _InlineCursor:
        return _InlineCursor(self._connection)

    async def __aexit__(self, *_: object) -> None:
        return None


class _InlineCursor:
    def __init__(self, connection: _InlineSqlite) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> _InlineCursor:
        await self._connection.run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> _InlineCursor:
        await self._connection.run(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
