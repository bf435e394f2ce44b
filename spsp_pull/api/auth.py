"""Bearer API keys: which account is calling. Every request looks its key up in the database (one indexed
read), so a revoked key is refused at once by every server process sharing it."""

from __future__ import annotations

from aiohttp import web

from spsp_pull.domain.errors import InputError
from spsp_pull.store.accounts import AccountRecord, authenticate
from spsp_pull.store.database import Database

INVALID_KEY = "The API key is not valid."


class Authenticator:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def account(self, request: web.Request) -> AccountRecord:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise InputError("unauthorized", "Send an API key as 'Authorization: Bearer <key>'.", status=401)
        account = await authenticate(self._db, key)
        if account is None:
            raise InputError("unauthorized", INVALID_KEY, status=401)
        return account

    async def admin(self, request: web.Request) -> AccountRecord:
        account = await self.account(request)
        if not account.is_admin:
            raise InputError("forbidden", "Only the admin key may do this.", status=403)
        return account
