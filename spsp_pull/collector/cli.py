"""`spsp-pull collect`: pull one cycle from each pointer of a list (see spsp_pull.collector)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from spsp_pull.cli_errors import ExitStatus, UsageError

DEFAULT_STATE = Path("spsp-collect.sqlite3")


def add_collect_cli(sub: Any) -> None:
    """The `collect` command, on the `spsp-pull` subcommands `sub`."""
    from spsp_pull import cli_arguments

    p = sub.add_parser(
        "collect",
        help="pull one cycle from each pointer of a list, many at once over one BTP connection",
        description="Pull what each pointer of the list is owed this cycle; a run again pulls nothing twice.",
    )
    p.add_argument("list", nargs="?", type=Path, help="file of pointers: one per line, .csv or .json")
    p.add_argument("--format", choices=["lines", "csv", "json"], help="the file's format (default: by name)")
    p.add_argument("--from-db", metavar="URL", help="read the pointers from this database (SQLAlchemy URL)")
    p.add_argument("--table", help="with --from-db: the table (schema.table allowed)")
    p.add_argument("--column", default="pointer", help="with --from-db: the pointer column (default pointer)")
    p.add_argument("--amount-column", help="with --from-db: a column with each pointer's amount per cycle")
    p.add_argument(
        "--amount",
        type=cli_arguments.amount_argument,
        help="amount per cycle for pointers the list gives none",
    )
    p.add_argument(
        "--btp",
        type=cli_arguments.btp_url_argument,
        default=os.environ.get("SPSP_PAYEE_BTP"),
        help="your BTP account (SPSP_PAYEE_BTP; default: a new account at 127.0.0.1:7768)",
    )
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--state", type=Path, help=f"SQLite file of what was collected (default ./{DEFAULT_STATE})"
    )
    state.add_argument(
        "--state-url", help="or a database for it (SQLAlchemy URL, e.g. postgresql+asyncpg://…)"
    )
    p.add_argument(
        "--concurrency", type=cli_arguments.positive_count, default=50, help="pulls at once (default 50)"
    )
    p.add_argument(
        "--timeout", type=cli_arguments.seconds, default=cli_arguments.seconds("60"), help="seconds per pull"
    )
    p.add_argument("--window", type=int, default=1, help="Prepares in flight per pull")
    p.add_argument("--json", action="store_true", help="every pointer's outcome as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(command=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    from spsp_pull.cli_arguments import payee_btp
    from spsp_pull.collector import SqlState, collect
    from spsp_pull.collector.progress import Progress
    from spsp_pull.collector.sources import PointerListError, read_pointer_file, read_pointer_table

    async def run() -> Any:
        try:
            if args.from_db:
                if not args.table or args.list:
                    raise UsageError("--from-db needs --table (and no list file)")
                items = await read_pointer_table(args.from_db, args.table, args.column, args.amount_column)
            elif args.list:
                items = read_pointer_file(args.list, args.format)
            else:
                raise UsageError("give a list file of pointers, or --from-db URL --table NAME")
        except PointerListError as exc:
            raise UsageError(str(exc)) from None
        if args.amount is not None:
            items = [item if item.amount else replace(item, amount=args.amount) for item in items]
        url = args.state_url or f"sqlite+aiosqlite:///{args.state or DEFAULT_STATE}"
        progress = None if args.quiet else Progress(len(items), sys.stderr)
        async with SqlState.open(url) as state:
            try:
                return await collect(
                    items,
                    btp_url=payee_btp(args),
                    state=state,
                    concurrency=args.concurrency,
                    time_limit=args.timeout,
                    max_in_flight=args.window,
                    on_outcome=progress,
                )
            finally:
                if progress is not None:
                    progress.close()

    report = asyncio.run(run())
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        for outcome in report.outcomes:
            if outcome.kind.value not in {"pulled", "nothing-due"}:
                why = f" ({outcome.reason}{': ' + outcome.detail if outcome.detail else ''})"
                print(
                    f"{outcome.kind.value} {outcome.amount} {outcome.pointer}{why if outcome.reason else ''}"
                )
        counts = ", ".join(f"{n} {kind}" for kind, n in report.counts().items() if n)
        seconds = report.elapsed.total_seconds()
        print(
            f"collected {len(report.outcomes)} pointers in {seconds:.1f} s: {counts}; {report.amount} units"
        )
    return ExitStatus.OK if report.complete else ExitStatus.PARTIAL
