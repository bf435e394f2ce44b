"""Pointers through the store: versions survive the round trip with their exact schedule."""

from __future__ import annotations

from datetime import UTC, datetime

from spsp_pull.domain.agreement import Changes, current_cycle, global_cycle_window
from spsp_pull.store import pointers
from spsp_pull.store.database import Database
from tests.store.pointer_factory import make_pointer


async def test_month_end_schedule_survives_a_revision_and_the_database(db: Database) -> None:
    start = datetime(2024, 1, 31, tzinfo=UTC)
    record = await make_pointer(db, start, amount=100, interval="P1M", cycles=12)
    in_cycle_2 = datetime(2024, 3, 5, tzinfo=UTC)
    revised = await pointers.revise_pointer(
        db, record.account_id, record.token, Changes(amount=200), in_cycle_2
    )
    reread = await pointers.find_by_token(db, record.token)
    assert reread is not None and reread.version == revised.version
    assert current_cycle(reread.version, in_cycle_2) == 2
    assert global_cycle_window(reread.version, 3)[0] == datetime(2024, 3, 31, tzinfo=UTC)
    assert global_cycle_window(reread.version, 4)[0] == datetime(2024, 4, 30, tzinfo=UTC)
    versions = await pointers.pointer_versions(db, record.id)
    assert [v.version.number for v in versions] == [1, 2]
    assert versions[1].version == reread.version


def test_tokens_never_look_like_command_line_options() -> None:
    tokens = {pointers.new_token() for _ in range(5000)}  # 1 in 64 base64url strings starts with "-"
    assert len(tokens) == 5000
    assert not [t for t in tokens if t.startswith("-")]
    assert all(len(t) == 22 for t in tokens)
