"""Where the list of pointers comes from: a file, or a table in the subscription service's own database.

A file is one pointer per line (blank lines and `#` comments skipped), CSV with a header naming a `pointer`
column (and optionally `amount`, the amount per cycle in minor units), or JSON: a list of pointers, or of
objects with `pointer` (and `amount`). The format follows the name (`.csv`, `.json`, else lines) unless
given. A table is read with SQLAlchemy: its pointer column and, optionally, an amount column.

A pointer listed twice is collected once (the first listing counts). Amounts are checked here, so a bad one
stops the run before anything is pulled; pointers are checked when collected (a bad one is that pointer's
`failed` outcome).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnClause

from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import parse_amount

FORMATS = ("lines", "csv", "json")


class PointerListError(ValueError):
    """The list cannot be read: a bad format, column, amount or file."""


@dataclass(frozen=True, slots=True)
class PointerItem:
    """A pointer to collect, with its amount per cycle (None: the agreement's)."""

    pointer: str
    amount: int | None = None


def read_pointer_file(path: Path, list_format: str | None = None) -> list[PointerItem]:
    text = path.read_text(encoding="utf-8")
    kind = list_format or {".csv": "csv", ".json": "json"}.get(path.suffix.lower(), "lines")
    where = str(path)
    if kind == "lines":
        lines = (line.strip() for line in text.splitlines())
        return unique(PointerItem(line) for line in lines if line and not line.startswith("#"))
    if kind == "csv":
        return unique(_csv_items(text, where))
    if kind == "json":
        return unique(_json_items(text, where))
    raise PointerListError(f"unknown list format {kind!r} (choose from {', '.join(FORMATS)})")


async def read_pointer_table(
    url: str, table_name: str, pointer_column: str, amount_column: str | None = None
) -> list[PointerItem]:
    """The pointers in `table_name` (`schema.table` allowed) of the database at `url`."""
    schema, _, name = table_name.rpartition(".")
    columns: list[ColumnClause[Any]] = [column(pointer_column)]
    if amount_column:
        columns.append(column(amount_column))
    source = table(name, *columns, schema=schema or None)
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(make_url(url))
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(*source.c))
            rows = result.all()
    except SQLAlchemyError as exc:
        first_line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise PointerListError(f"cannot read the pointers from {table_name}: {first_line}") from None
    finally:
        await engine.dispose()
    where = f"{table_name}.{pointer_column}"
    return unique(
        _item(row[0], row[1] if amount_column else None, f"{where} row {n}") for n, row in enumerate(rows, 1)
    )


def unique(items: Iterable[PointerItem]) -> list[PointerItem]:
    seen: dict[str, PointerItem] = {}
    for item in items:
        seen.setdefault(item.pointer, item)
    return list(seen.values())


def _csv_items(text: str, where: str) -> Iterable[PointerItem]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "pointer" not in reader.fieldnames:
        raise PointerListError(f"{where}: a CSV list needs a header with a 'pointer' column")
    for n, row in enumerate(reader, 2):
        if (row.get("pointer") or "").strip():
            yield _item(row["pointer"], row.get("amount") or None, f"{where} line {n}")


def _json_items(text: str, where: str) -> Iterable[PointerItem]:
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PointerListError(f"{where}: not JSON ({exc})") from None
    if not isinstance(entries, list):
        raise PointerListError(f"{where}: a JSON list is an array of pointers or of objects")
    for n, entry in enumerate(entries):
        if isinstance(entry, dict):
            yield _item(entry.get("pointer"), entry.get("amount"), f"{where} item {n}")
        else:
            yield _item(entry, None, f"{where} item {n}")


def _item(pointer: Any, amount: Any, where: str) -> PointerItem:
    if not isinstance(pointer, str) or not pointer.strip():
        raise PointerListError(f"{where}: no pointer")
    if amount is None:
        return PointerItem(pointer.strip())
    try:
        return PointerItem(pointer.strip(), parse_amount(amount, "amount"))
    except InputError as error:
        raise PointerListError(f"{where}: {error.detail} (got {amount!r})") from None
