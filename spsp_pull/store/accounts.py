"""Accounts (a wallet is an account), their API keys and their webhook signing secrets.

Keys are stored as SHA-256 digests only. A key is known publicly by its row id. Revoking a key stamps
`revoked_at`; `authenticate` only accepts keys without one, so a revocation holds from its commit on, in every
process sharing the database.

The webhook secret is kept as it is (the server must sign with it, and the account may read it again).
Rotating it makes a new one at once; the previous one keeps signing beside it (a second `v1=` in the
signature header) for `ROTATION_OVERLAP`, so receivers can switch without dropping a message.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError

from spsp_pull.domain.errors import InputError
from spsp_pull.store import models
from spsp_pull.store.database import Database

ADMIN_ACCOUNT = "admin"
KEY_PREFIX = "sk_"
MAX_LABEL_LENGTH = 100
ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    name: str
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    account_id: int
    prefix: str
    label: str | None
    bootstrap: bool
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    account: AccountRecord
    key_id: int
    key: str  # shown once, never stored


@dataclass(frozen=True, slots=True)
class LiveKey:
    key_id: int
    account: AccountRecord


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    secret: str
    previous_valid_until: datetime | None  # the previous secret also signs until then


_ACCOUNTS = cast(Table, models.Account.__table__)
_API_KEYS = cast(Table, models.ApiKey.__table__)


class AdminKeyRevoked(Exception):
    """The admin key the server is configured with was revoked (through the API)."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


async def ensure_admin(db: Database, bootstrap_key: str, now: datetime) -> AccountRecord:
    """Make sure the admin account exists and accepts `bootstrap_key` (SPSP_AUTH_TOKEN), and that this key
    alone is marked as the bootstrap key: a key configured before stays valid but becomes revocable."""
    digest = key_digest(bootstrap_key)
    for _ in range(3):
        try:
            async with db.write() as session:
                admin = (
                    await session.scalars(select(models.Account).where(models.Account.name == ADMIN_ACCOUNT))
                ).one_or_none()
                if admin is None:
                    admin = _account_row(ADMIN_ACCOUNT, now, is_admin=True)
                    session.add(admin)
                    await session.flush()
                known = (
                    await session.scalars(select(models.ApiKey).where(models.ApiKey.key_hash == digest))
                ).one_or_none()
                if known is None:
                    session.add(_key_row(admin.id, bootstrap_key, now, bootstrap=True))
                elif known.revoked_at is not None:
                    raise AdminKeyRevoked
                else:
                    known.bootstrap = True
                await session.execute(
                    update(models.ApiKey)
                    .where(models.ApiKey.bootstrap, models.ApiKey.key_hash != digest)
                    .values(bootstrap=False)
                )
                return _record(admin)
        except IntegrityError:
            continue  # another instance bootstrapped at the same moment
    raise RuntimeError("could not bootstrap the admin account")


async def create_account(db: Database, name: str, now: datetime) -> IssuedKey:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InputError("invalid-account-name", "An account name has 1 to 100 characters.", field="name")
    key = new_api_key()
    try:
        async with db.write() as session:
            account = _account_row(name, now)
            session.add(account)
            await session.flush()
            row = _key_row(account.id, key, now)
            session.add(row)
            await session.flush()
            return IssuedKey(_record(account), row.id, key)
    except IntegrityError:
        raise InputError(
            "account-exists", f"An account named {name!r} exists already.", status=409, field="name"
        ) from None


async def issue_key(
    db: Database, account: AccountRecord, now: datetime, label: str | None = None
) -> IssuedKey:
    if label is not None and not 1 <= len(label) <= MAX_LABEL_LENGTH:
        raise InputError(
            "invalid-label", f"A key label has 1 to {MAX_LABEL_LENGTH} characters.", field="label"
        )
    key = new_api_key()
    async with db.write() as session:
        row = _key_row(account.id, key, now, label=label)
        session.add(row)
        await session.flush()
        return IssuedKey(account, row.id, key)


async def list_keys(db: Database, account_id: int) -> list[ApiKeyRecord]:
    """The account's keys, revoked ones included, oldest first."""
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.ApiKey).where(models.ApiKey.account_id == account_id).order_by(models.ApiKey.id)
            )
        ).all()
        return [_key_record(row) for row in rows]


async def revoke_key(db: Database, account_id: int, key_id: int, now: datetime) -> ApiKeyRecord:
    """Revoke one of the account's keys. Revoking a revoked key changes nothing and returns it as it is."""
    async with db.write() as session:
        row = (
            await session.scalars(
                select(models.ApiKey).where(
                    models.ApiKey.id == key_id, models.ApiKey.account_id == account_id
                )
            )
        ).one_or_none()
        if row is None:
            raise key_not_found()
        if row.bootstrap:
            raise InputError(
                "bootstrap-key",
                "This is the admin key from SPSP_AUTH_TOKEN: change the setting and restart to replace it.",
                status=409,
            )
        if row.revoked_at is None:
            row.revoked_at = now
        return _key_record(row)


async def authenticate(db: Database, presented: str) -> AccountRecord | None:
    """The account whose live key this is. Looking up the digest (not the key) keeps the comparison free
    of timing leaks about the key itself. Two indexed lookups outside any transaction (every authenticated
    request makes them: there is no cache, so a revoked key is refused at once by every process)."""
    found = await live_key(db, presented)
    return None if found is None else found.account


async def live_key(db: Database, presented: str) -> LiveKey | None:
    """The live key this is, with its account (as `authenticate`)."""
    return await _live(db, await db.select_one(_API_KEYS, "key_hash", key_digest(presented)))


async def live_key_by_id(db: Database, key_id: int) -> LiveKey | None:
    """The key with this id and its account, while the key is not revoked (a signed-in page session holds
    the id of the key it was opened with, and ends when that key is revoked)."""
    return await _live(db, await db.select_one(_API_KEYS, "id", key_id))


async def _live(db: Database, key: dict[str, Any] | None) -> LiveKey | None:
    if key is None or key["revoked_at"] is not None:
        return None
    account = await db.select_one(_ACCOUNTS, "id", key["account_id"])
    if account is None:
        return None
    record = AccountRecord(account["id"], account["name"], bool(account["is_admin"]), account["created_at"])
    return LiveKey(key["id"], record)


async def list_accounts(db: Database) -> list[AccountRecord]:
    async with db.read() as session:
        rows = (await session.scalars(select(models.Account).order_by(models.Account.id))).all()
        return [_record(row) for row in rows]


async def find_account(db: Database, name: str) -> AccountRecord | None:
    async with db.read() as session:
        row = (await session.scalars(select(models.Account).where(models.Account.name == name))).one_or_none()
        return None if row is None else _record(row)


async def webhook_secret(db: Database, account_id: int, now: datetime) -> WebhookSecret:
    async with db.read() as session:
        return _secret(await session.get_one(models.Account, account_id), now)


async def rotate_webhook_secret(db: Database, account_id: int, now: datetime) -> WebhookSecret:
    """A new secret, in force at once; the one it replaces signs beside it for `ROTATION_OVERLAP`.
    Rotating again within the overlap ends the older secret's overlap at once."""
    async with db.write() as session:
        row = await session.get_one(models.Account, account_id, with_for_update=True)
        row.webhook_secret_previous = row.webhook_secret
        row.webhook_secret_previous_until = now + ROTATION_OVERLAP
        row.webhook_secret = new_signing_secret()
        return _secret(row, now)


def signing_secrets(row: models.Account, now: datetime) -> tuple[str, ...]:
    """What signs the account's webhooks at `now`: the current secret, then the previous one during its
    overlap."""
    if row.webhook_secret_previous is not None and _overlapping(row, now):
        return (row.webhook_secret, row.webhook_secret_previous)
    return (row.webhook_secret,)


def key_not_found() -> InputError:
    return InputError("key-not-found", "This account has no API key with this id.", status=404)


def _key_row(
    account_id: int, key: str, now: datetime, *, label: str | None = None, bootstrap: bool = False
) -> models.ApiKey:
    return models.ApiKey(
        account_id=account_id,
        key_hash=key_digest(key),
        prefix=key[:8],
        label=label,
        bootstrap=bootstrap,
        created_at=now,
        revoked_at=None,
    )


def _key_record(row: models.ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id, row.account_id, row.prefix, row.label, row.bootstrap, row.created_at, row.revoked_at
    )


def _account_row(name: str, now: datetime, *, is_admin: bool = False) -> models.Account:
    return models.Account(name=name, is_admin=is_admin, created_at=now, webhook_secret=new_signing_secret())


def _overlapping(row: models.Account, now: datetime) -> bool:
    return row.webhook_secret_previous_until is not None and now < row.webhook_secret_previous_until


def _secret(row: models.Account, now: datetime) -> WebhookSecret:
    overlap_ends = row.webhook_secret_previous_until if _overlapping(row, now) else None
    return WebhookSecret(row.webhook_secret, overlap_ends)


def _record(row: models.Account) -> AccountRecord:
    return AccountRecord(row.id, row.name, row.is_admin, row.created_at)
