"""Two parts of the server lean on private internals of a dependency, so their versions are pinned to one
minor release (pyproject.toml). These tests fail loudly when an upgrade moves what they lean on:

- the inline SQLite driver (`spsp_pull/store/inline_sqlite.py`, `InlineSqlite`) stands in for aiosqlite's
  connection under SQLAlchemy's aiosqlite adapter, which reaches into that connection's private attributes
  (`SPSP_SQLITE_DRIVER=aiosqlite` runs without it, on the adapter as it is);
- the query fast path and the request-head timeout (`spsp_pull/api/query_fast_path.py`) hand connections to
  aiohttp's `RequestHandler` and move its keep-alive deadline.

Before widening a pin: read the new release's code at the places named below, adapt, then change the pin
and the expected versions here together.
"""

from __future__ import annotations

import inspect
import sqlite3
from importlib.metadata import version

import pytest
from aiohttp import web
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

from spsp_pull.store.inline_sqlite import InlineSqlite

PINNED = {"aiohttp": "3.14", "sqlalchemy": "2.1"}


@pytest.mark.parametrize(("package", "minor"), PINNED.items())
def test_the_installed_release_is_the_pinned_minor(package: str, minor: str) -> None:
    installed = version(package)
    assert installed.startswith(f"{minor}."), (
        f"{package} {installed} is installed, but the code was checked against {minor}.x internals "
        f"(see this file's docstring for where)"
    )


def test_sqlalchemy_reaches_into_aiosqlite_where_the_inline_driver_answers() -> None:
    """The adapter sets the isolation level through the connection's queue (`_tx.put_nowait` with a
    future and a function of `_conn`), checks `_connection` to see if it is open and calls `stop()`."""
    source = inspect.getsource(AsyncAdapt_aiosqlite_connection)
    for use in (
        "self._connection._tx.put_nowait(",
        "self._connection._conn",
        "if self._connection._connection:",
        "self._connection.stop",
        "self._connection.create_function(",
    ):
        assert use in source, f"SQLAlchemy's aiosqlite adapter no longer does {use!r}: check inline_sqlite.py"


def test_the_inline_driver_has_what_the_adapter_reaches_for() -> None:
    connection = InlineSqlite(sqlite3.connect(":memory:"))
    try:
        assert callable(connection._tx.put_nowait)
        assert isinstance(connection._conn, sqlite3.Connection)
        assert connection._connection is connection._conn
        assert callable(connection.create_function)
    finally:
        connection.stop()
    assert connection._connection is None  # what the adapter reads as closed


def test_aiohttp_request_handler_keeps_what_the_head_timeout_moves() -> None:
    """HeadTimeoutRequestHandler reads `_waiter` and `_loop` and replaces the keep-alive deadline
    (`_keepalive_handle`, `_next_keepalive_close_time`) with one that calls `_process_keepalive`."""
    slots = set().union(*(getattr(cls, "__slots__", ()) for cls in web.RequestHandler.__mro__))
    for attribute in ("_waiter", "_loop", "_keepalive_handle", "_next_keepalive_close_time"):
        assert attribute in slots, f"aiohttp's RequestHandler has no {attribute}: check query_fast_path.py"
    assert callable(getattr(web.RequestHandler, "_process_keepalive", None))
    keepalive = inspect.getsource(web.RequestHandler._process_keepalive)
    assert "_next_keepalive_close_time" in keepalive, (
        "aiohttp's keep-alive close no longer reads its deadline"
    )


async def test_aiohttp_server_and_site_keep_what_the_fast_path_builds_on() -> None:
    """QueryFastPathSite makes aiohttp's protocol itself from the runner's `server` and its `_kwargs`, and
    fills `BaseSite`'s `_runner`, `_ssl_context` and `_server`."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    try:
        assert isinstance(runner.server, web.Server)
        assert isinstance(runner.server._kwargs, dict)
        site_slots = set().union(*(getattr(cls, "__slots__", ()) for cls in web.BaseSite.__mro__))
        assert {"_runner", "_ssl_context", "_server"} <= site_slots
    finally:
        await runner.cleanup()
