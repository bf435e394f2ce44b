"""The subscription service's side of billing day: pull one cycle from each pointer of a list, many at once
over one BTP connection, and remember what was collected so that a restart never pulls a cycle twice nor
skips one.

    from spsp_pull.collector import collect, read_pointer_file, SqlState

    async with SqlState.open("sqlite+aiosqlite:///collect.sqlite3") as state:
        report = await collect(read_pointer_file(path), btp_url=..., state=state, concurrency=50)
    report.counts()   # {"pulled": 980, "nothing-due": 12, "failed": 8, ...}

`sources` reads the lists, `state` keeps what was collected, `plan` decides per pointer (no I/O), `runner`
pulls, `outcome` is what each pointer came to.
"""

from spsp_pull.collector.outcome import Kind, PointerOutcome, Report
from spsp_pull.collector.runner import PointerItem, collect
from spsp_pull.collector.sources import read_pointer_file, read_pointer_table
from spsp_pull.collector.state import CycleRecord, SqlState

__all__ = [
    "CycleRecord",
    "Kind",
    "PointerItem",
    "PointerOutcome",
    "Report",
    "SqlState",
    "collect",
    "read_pointer_file",
    "read_pointer_table",
]
