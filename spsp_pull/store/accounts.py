"""Accounts (a wallet is an account) and their API keys. Keys are stored as SHA-256 digests only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from spsp_pull.domain.errors import InputError
from spsp_pull.store import models
from spsp_pull.store.database import Database

ADMIN_ACCOUNT = "admin"
KEY_PREFIX = "sk_"


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    name: str
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedKey:
    account: AccountRecord
    key: str  # shown once, never stored


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def ensure_admin(db: Database, bootstrap_key: str, now: datetime) -> AccountRecord:
    """Make sure the admin account exists and accepts `bootstrap_key` (SPSP_AUTH_TOKEN)."""
    digest = key_digest(bootstrap_key)
    for _ in range(3):
        try:
            async with db.write() as session:
                admin = (
                    await session.scalars(select(models.Account).where(models.Account.name == ADMIN_ACCOUNT))
                ).one_or_none()
                if admin is None:
                    admin = models.Account(name=ADMIN_ACCOUNT, is_admin=True, created_at=now)
                    session.add(admin)
                    await session.flush()
                known = (
                    await session.scalars(select(models.ApiKey).where(models.ApiKey.key_hash == digest))
                ).one_or_none()
                if known is None:
                    session.add(_key_row(admin.id, bootstrap_key, now))
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
            account = models.Account(name=name, is_admin=False, created_at=now)
            session.add(account)
            await session.flush()
            session.add(_key_row(account.id, key, now))
            return IssuedKey(_record(account), key)
    except IntegrityError:
        raise InputError(
            "account-exists", f"An account named {name!r} exists already.", status=409, field="name"
        ) from None


async def issue_key(db: Database, account_id: int, now: datetime) -> str:
    key = new_api_key()
    async with db.write() as session:
        await session.get_one(models.Account, account_id)
        session.add(_key_row(account_id, key, now))
    return key


async def authenticate(db: Database, presented: str) -> AccountRecord | None:
    """The account whose live key this is. Looking up the digest (not the key) keeps the comparison free
    of timing leaks about the key itself."""
    digest = key_digest(presented)
    async with db.read() as session:
        row = (
            await session.execute(
                select(models.Account)
                .join(models.ApiKey, models.ApiKey.account_id == models.Account.id)
                .where(models.ApiKey.key_hash == digest, models.ApiKey.revoked_at.is_(None))
            )
        ).scalar_one_or_none()
        return None if row is None else _record(row)


async def list_accounts(db: Database) -> list[AccountRecord]:
    async with db.read() as session:
        rows = (await session.scalars(select(models.Account).order_by(models.Account.id))).all()
        return [_record(row) for row in rows]


async def find_account(db: Database, name: str) -> AccountRecord | None:
    async with db.read() as session:
        row = (await session.scalars(select(models.Account).where(models.Account.name == name))).one_or_none()
        return None if row is None else _record(row)


def _key_row(account_id: int, key: str, now: datetime) -> models.ApiKey:
    return models.ApiKey(
        account_id=account_id, key_hash=key_digest(key), prefix=key[:8], created_at=now, revoked_at=None
    )


def _record(row: models.Account) -> AccountRecord:
    return AccountRecord(row.id, row.name, row.is_admin, row.created_at)
