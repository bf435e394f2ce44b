"""Opening the pointer an offline (JWT) token names: the token is verified against its signer (the account's
public key its `kid` names, or the server's HS256 secret), then its pointer is found or registered."""

from __future__ import annotations

from datetime import datetime

from spsp_pull.domain.outbound_targets import PUBLIC_ONLY, TargetPolicy
from spsp_pull.offline import authenticate_offline_token, offline_pointer_from, token_kid
from spsp_pull.store.database import Database
from spsp_pull.store.jwt_keys import load_key, register_offline_pointer
from spsp_pull.store.pointers import find_by_jwt_id
from spsp_pull.store.records import PointerRecord


async def open_offline_pointer(
    db: Database,
    token: str,
    *,
    hs256_secret: str | None,
    admin_account_id: int,
    now: datetime,
    targets: TargetPolicy = PUBLIC_ONLY,
) -> PointerRecord:
    """The pointer a `GET /<jwt>` names: verified, and registered on first use (its webhook within
    `targets`).

    Once registered, a pointer is found by its verified signature alone, so it keeps answering after the
    token's `exp` or the agreement's expiry (with nothing available once the agreement has ended).
    """
    kid = token_kid(token)
    key = None if kid is None else await load_key(db, kid)
    signed = authenticate_offline_token(
        token,
        hs256_secret=hs256_secret,
        resolve_key=lambda wanted: key if key is not None and wanted == key.kid else None,
    )
    owner = admin_account_id if signed.account_id is None else signed.account_id
    existing = await find_by_jwt_id(db, owner, signed.signer, signed.jwt_id)
    if existing is not None:
        return existing
    offline = offline_pointer_from(signed, now, targets)
    return await register_offline_pointer(db, offline, admin_account_id, now)
