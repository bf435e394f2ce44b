"""Offline (JWT) pointers in the store: accounts' verification keys, revoked `jti`s, and registration.

A `jti` belongs to its signer (`offline.py`): pointers are unique per (account, signer, `jti`) and
revocations per (account, `jti`), so no other account can take, block or revoke a signer's `jti`.
Registration is idempotent: a token registers once, however many first uses race, and registering again
returns the pointer as it is (balances untouched).

Revocation (by `jti`, before first use) and a first use can race. Each side writes first and looks for the
other's write afterwards, so at least one of them sees the other, and the revocation wins: a pointer that
was registered while its `jti` was being revoked is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.domain.errors import InputError
from spsp_pull.offline import (
    ASYMMETRIC_ALGORITHMS,
    MAX_JTI_LENGTH,
    MAX_KID_LENGTH,
    Algorithm,
    OfflinePointer,
    OfflinePointerError,
    PublicJwtKey,
    load_public_key,
    public_key_pem,
)
from spsp_pull.store import models
from spsp_pull.store.database import Database
from spsp_pull.store.pointers import NewPointer, cancel_pointer, create_pointer
from spsp_pull.store.records import PointerRecord

MAX_PEM_LENGTH = 16 * 1024


@dataclass(frozen=True, slots=True)
class JwtKeyRecord:
    id: int
    account_id: int
    kid: str
    algorithm: str
    public_key_pem: str
    created_at: datetime


async def add_key(
    db: Database, account_id: int, kid: str, algorithm: str, public_key_pem_text: str, now: datetime
) -> JwtKeyRecord:
    """Register a public key for the account's wallet; the PEM must be a P-256 key for ES256 or an Ed25519
    key for EdDSA. It is stored in canonical PEM form."""
    _check_kid(kid)
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        raise InputError(
            "invalid-jwt-algorithm",
            f"algorithm must be one of {', '.join(ASYMMETRIC_ALGORITHMS)}",
            field="algorithm",
        )
    if not isinstance(public_key_pem_text, str) or len(public_key_pem_text) > MAX_PEM_LENGTH:
        raise InputError("invalid-public-key", "publicKey is not a PEM public key", field="publicKey")
    pem = public_key_pem(load_public_key(public_key_pem_text, algorithm))
    row = models.JwtKey(
        account_id=account_id, kid=kid, algorithm=algorithm, public_key_pem=pem, created_at=now
    )
    try:
        async with db.write() as session:
            session.add(row)
            await session.flush()
            return _key_record(row)
    except IntegrityError:
        raise InputError(
            "kid-exists", f"a key with kid {kid!r} already exists", status=409, field="kid"
        ) from None


async def list_keys(db: Database, account_id: int) -> list[JwtKeyRecord]:
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.JwtKey).where(models.JwtKey.account_id == account_id).order_by(models.JwtKey.id)
            )
        ).all()
        return [_key_record(row) for row in rows]


async def delete_key(db: Database, account_id: int, kid: str) -> None:
    """Remove one of the account's keys: no token it signed verifies any more, so unused ones can never be
    registered and the JWT URLs of registered ones stop resolving (those pointers stay in the store,
    managed by their token). Another account's key is reported as not found."""
    async with db.write() as session:
        row = (await session.scalars(select(models.JwtKey).where(models.JwtKey.kid == kid))).one_or_none()
        if row is None or row.account_id != account_id:
            raise InputError("jwt-key-not-found", f"no key {kid!r}", status=404, field="kid")
        await session.delete(row)


async def load_key(db: Database, kid: str) -> PublicJwtKey | None:
    async with db.read() as session:
        row = (await session.scalars(select(models.JwtKey).where(models.JwtKey.kid == kid))).one_or_none()
        if row is None or row.algorithm not in ASYMMETRIC_ALGORITHMS:
            return None
        algorithm: Algorithm = "ES256" if row.algorithm == "ES256" else "EdDSA"
        return PublicJwtKey(
            kid=row.kid, algorithm=algorithm, account_id=row.account_id, public_key=row.public_key_pem
        )


async def revoke_jwt(db: Database, account_id: int, jti: str, now: datetime) -> None:
    """Make sure no offline pointer with this `jti`, signed by any of this account's signers (its keys; the
    HS256 secret for the admin account), is ever registered.

    Revoking again is a no-op. Once such a pointer is registered it is refused ('jwt-already-registered':
    cancel the pointer instead). Other accounts' revocations and pointers with the same `jti` play no part.
    """
    _check_jti(jti)
    try:
        async with db.write() as session:
            if await session.get(models.RevokedJwt, (account_id, jti)) is not None:
                return
            if await _registered(session, account_id, jti):
                raise InputError(
                    "jwt-already-registered",
                    "this offline pointer is already in use; cancel the pointer instead",
                    status=409,
                    field="jti",
                )
            session.add(models.RevokedJwt(account_id=account_id, jti=jti, revoked_at=now))
    except IntegrityError:
        # Revoked at the same moment by another request of this account: that revocation stands.
        if not await is_revoked(db, account_id, jti):
            raise
        return
    async with db.read() as session:
        raced = (
            await session.scalars(
                select(models.Pointer.token).where(
                    models.Pointer.account_id == account_id, models.Pointer.jwt_id == jti
                )
            )
        ).all()
    for token in raced:
        await cancel_pointer(db, account_id, token, now)


async def is_revoked(db: Database, account_id: int, jti: str) -> bool:
    """Whether the account revoked `jti` (for every one of its signers)."""
    async with db.read() as session:
        return await session.get(models.RevokedJwt, (account_id, jti)) is not None


async def register_offline_pointer(
    db: Database, offline: OfflinePointer, admin_account_id: int, now: datetime
) -> PointerRecord:
    """The pointer for a verified offline token, created on first use: one per (account, signer, `jti`).
    Refused if the account revoked its `jti` ('jwt-revoked')."""
    owner = admin_account_id if offline.account_id is None else offline.account_id
    if await is_revoked(db, owner, offline.jwt_id):
        raise _revoked()
    record = await create_pointer(
        db,
        NewPointer(
            account_id=owner,
            terms=offline.terms,
            origin="jwt",
            jwt_id=offline.jwt_id,
            jwt_signer=offline.signer,
            webhook=offline.webhook,
            description=offline.description,
            metadata=offline.metadata,
        ),
        now,
    )
    if await is_revoked(db, owner, offline.jwt_id):
        await cancel_pointer(db, owner, record.token, now)
        raise _revoked()
    return record


async def _registered(session: AsyncSession, account_id: int, jti: str) -> bool:
    """Whether one of the account's signers has registered a pointer with this `jti`."""
    query = select(models.Pointer.id).where(
        models.Pointer.account_id == account_id, models.Pointer.jwt_id == jti
    )
    return (await session.scalars(query.limit(1))).first() is not None


def _check_kid(kid: object) -> None:
    if (
        not isinstance(kid, str)
        or not 1 <= len(kid) <= MAX_KID_LENGTH
        or not all("!" <= char <= "~" for char in kid)
    ):
        raise InputError(
            "invalid-kid",
            f"kid must be 1 to {MAX_KID_LENGTH} printable ASCII characters without spaces",
            field="kid",
        )


def _check_jti(jti: object) -> None:
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise InputError(
            "invalid-jti", f"jti must be a string of 1 to {MAX_JTI_LENGTH} characters", field="jti"
        )


def _revoked() -> OfflinePointerError:
    return OfflinePointerError("jwt-revoked", "this offline pointer was revoked before its first use")


def _key_record(row: models.JwtKey) -> JwtKeyRecord:
    return JwtKeyRecord(
        id=row.id,
        account_id=row.account_id,
        kid=row.kid,
        algorithm=row.algorithm,
        public_key_pem=row.public_key_pem,
        created_at=row.created_at,
    )
