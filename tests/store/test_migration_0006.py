"""Migration 0006 (signer-scoped jti, BTP token pins, idempotency purge index) down and up again with data in
the tables it changes (tests/store/test_schema.py compares them with the models)."""

from __future__ import annotations

from spsp_pull.domain.clock import ManualClock
from spsp_pull.offline import mint_offline_pointer
from spsp_pull.offline_pointers import open_offline_pointer
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.jwt_keys import is_revoked, revoke_jwt
from tests.store.schema import downgrade

SECRET = "shared-wallet-secret-of-32-bytes-or-more"
CLAIMS = {
    "amount": 10,
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1D",
    "cycles": 3,
    "cap": False,
    "jti": "kept",
}


async def test_down_to_0005_and_up_again_keeps_pointers_and_revocations(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    admin = await ensure_admin(db, "test-admin-key", now)
    token = mint_offline_pointer(CLAIMS, algorithm="HS256", secret=SECRET)
    registered = await open_offline_pointer(
        db, token, hs256_secret=SECRET, admin_account_id=admin.id, now=now
    )
    await revoke_jwt(db, admin.id, "lost", now)

    await downgrade(db, "0005")
    await db.migrate()
    # Registered before the signer was recorded (the downgrade dropped it): still this token's pointer.
    again = await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=admin.id, now=now)
    assert again.id == registered.id
    assert await is_revoked(db, admin.id, "lost")
