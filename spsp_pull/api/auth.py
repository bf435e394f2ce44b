"""Bearer API keys: which account is calling. Lookups are cached briefly so hot paths skip the database."""

from __future__ import annotations

import time

from aiohttp import web

from spsp_pull.api.problems import Problem
from spsp_pull.store.accounts import AccountRecord, authenticate
from spsp_pull.store.database import Database

CACHE_SECONDS = 5.0


class Authenticator:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, tuple[float, AccountRecord]] = {}

    async def account(self, request: web.Request) -> AccountRecord:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Problem(401, "unauthorized", "Send an API key as 'Authorization: Bearer <key>'.")
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        account = await authenticate(self._db, key)
        if account is None:
            raise Problem(401, "unauthorized", "The API key is not valid.")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + CACHE_SECONDS, account)
        return account

    async def admin(self, request: web.Request) -> AccountRecord:
        account = await self.account(request)
        if not account.is_admin:
            raise Problem(403, "forbidden", "Only the admin key may do this.")
        return account
