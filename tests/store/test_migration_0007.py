"""Migration 0007 (the payer's pause on every agreement version) down and up again with a paused pointer in
the tables it changes (tests/store/test_schema.py compares them with the models)."""

from __future__ import annotations

from datetime import timedelta

from spsp_pull.domain.agreement import Changes, Pause
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import pointers
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from tests.domain.test_agreement import make_terms
from tests.store.schema import downgrade


async def test_down_to_0006_forgets_pauses_and_up_again_keeps_the_pointer(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "test-admin-key", now)
    created = await pointers.create_pointer(
        db, pointers.NewPointer(account_id=admin.id, terms=make_terms(start=now)), now
    )
    until = now + timedelta(days=2)
    paused = await pointers.revise_pointer(
        db, admin.id, created.token, Changes(paused=True, resumes_at=until), now
    )
    assert paused.version.pause == Pause(now, until)
    versions = await pointers.pointer_versions(db, created.id)
    assert [(v.reason, v.version.pause) for v in versions] == [
        ("created", None),
        ("paused", Pause(now, until)),
    ]

    await downgrade(db, "0006")
    await db.migrate()
    again = await pointers.find_by_token(db, created.token)
    assert again is not None
    assert (again.version.number, again.version.pause) == (2, None)
    resumed = await pointers.revise_pointer(db, admin.id, created.token, Changes(paused=True), now)
    assert resumed.version.pause == Pause(now)
