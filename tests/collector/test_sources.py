"""Pointer lists: lines, CSV, JSON and a table in the service's own database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from spsp_pull.collector.sources import PointerItem, PointerListError, read_pointer_file, read_pointer_table
from tests.conftest import DatabaseFactory

POINTERS = ["$a.example/1", "https://b.example/2", "$a.example/3"]


def test_lines_skip_blanks_comments_and_repeats(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("# billing day\n$a.example/1\n\n  https://b.example/2  \n$a.example/1\n$a.example/3\n")
    assert read_pointer_file(listing) == [PointerItem(p) for p in POINTERS]


def test_csv_with_amounts(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text("pointer,amount,name\n$a.example/1,1500,x\nhttps://b.example/2,,y\n")
    assert read_pointer_file(listing) == [
        PointerItem("$a.example/1", 1500),
        PointerItem("https://b.example/2"),
    ]


def test_json_of_strings_and_objects(tmp_path: Path) -> None:
    listing = tmp_path / "list.json"
    listing.write_text(
        json.dumps(["$a.example/1", {"pointer": "https://b.example/2", "amount": "18446744073709551615"}])
    )
    assert read_pointer_file(listing) == [
        PointerItem("$a.example/1"),
        PointerItem("https://b.example/2", 2**64 - 1),
    ]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("a.csv", "url\n$a.example/1\n", "needs a header with a 'pointer' column"),
        ("a.csv", "pointer,amount\n$a.example/1,1.5\n", "a.csv line 2: amount must be an integer"),
        ("a.json", '{"pointer": "$a.example/1"}', "an array of pointers or of objects"),
        ("a.json", '[{"amount": 5}]', "item 0: no pointer"),
        ("a.json", '["$a.example/1", {"pointer": "$b.example/2", "amount": 0}]', "item 1: amount must be"),
        ("a.json", "[", "not JSON"),
    ],
)
def test_a_list_that_cannot_be_read_says_where(tmp_path: Path, name: str, content: str, problem: str) -> None:
    listing = tmp_path / name
    listing.write_text(content)
    with pytest.raises(PointerListError, match=problem.replace(".", r"\.")):
        read_pointer_file(listing)


async def test_a_table_of_the_services_database(db_factory: DatabaseFactory) -> None:
    url, schema = await db_factory.url_and_schema()
    qualified = f"{schema}.subscribers" if schema else "subscribers"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(f"CREATE TABLE {qualified} (id integer primary key, url text, cents text)")
            )
            for n, pointer in enumerate(POINTERS, 1):
                await connection.execute(
                    text(f"INSERT INTO {qualified} (id, url, cents) VALUES (:id, :url, :cents)"),
                    {"id": n, "url": pointer, "cents": str(100 * n)},
                )
    finally:
        await engine.dispose()
    items = await read_pointer_table(url, qualified, "url", "cents")
    assert {(i.pointer, i.amount) for i in items} == {(p, 100 * n) for n, p in enumerate(POINTERS, 1)}
    plain = await read_pointer_table(url, qualified, "url")
    assert sorted(i.pointer for i in plain) == sorted(POINTERS) and all(i.amount is None for i in plain)


async def test_a_table_that_is_not_there_is_a_list_error(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}"
    with pytest.raises(PointerListError, match="cannot read the pointers from subscribers: OperationalError"):
        await read_pointer_table(url, "subscribers", "pointer")
