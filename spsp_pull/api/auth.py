"""Bearer API keys: which account is calling. Every request looks its key up in the database (one indexed
read), so a revoked key is refused at once by every server process sharing it."""

from __future__ import annotations

from aiohttp import web

from spsp_pull.api.problems import Problem
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
            raise Problem(401, "unauthorized", "Send an API key as 'Authorization: Bearer <key>'.")
        account = await authenticate(self._db, key)
        if account is None:
            raise Problem(401, "unauthorized", INVALID_KEY)
        return account

    async def admin(self, request: web.Request) -> AccountRecord:
        account = await self.account(request)
        if not account.is_admin:
            raise Problem(403, "forbidden", "Only the admin key may do this.")
        return account
