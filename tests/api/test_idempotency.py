"""Idempotency-Key over HTTP: the key of a request that crashed is free again once its claim lapses, and
the server forgets stored responses after the retention (purged at start and periodically)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from spsp_pull.api.context import StaticIlpEndpoint
from spsp_pull.config import Config
from spsp_pull.domain.clock import ManualClock
from spsp_pull.server import running
from spsp_pull.store import idempotency
from spsp_pull.store.accounts import authenticate
from spsp_pull.store.database import Database
from spsp_pull.store.models import IdempotentRequest
from tests.api.conftest import AGREEMENT, Api
from tests.ilp.hostile.databases import process_database, url_of


async def test_the_key_of_a_crashed_request_answers_409_until_its_claim_lapses(api: Api) -> None:
    body = json.dumps(AGREEMENT).encode()
    wallet = await authenticate(api.context.db, api.wallet_key)
    assert wallet is not None
    fingerprint = hashlib.sha256(b"POST /\n" + body).hexdigest()
    # A request that claimed the key and never finished: its process died.
    await idempotency.claim(api.context.db, wallet.id, "crashed-1", fingerprint, api.clock.now())
    headers = {**api.auth(), "Idempotency-Key": "crashed-1", "Content-Type": "application/json"}
    busy = await api.client.post("/", data=body, headers=headers)
    assert busy.status == 409
    assert (await busy.json())["code"] == "idempotency-key-in-use"
    api.clock.advance(timedelta(seconds=59))
    assert (await api.client.post("/", data=body, headers=headers)).status == 409
    api.clock.advance(timedelta(seconds=1))
    created = await api.client.post("/", data=body, headers=headers)
    assert created.status == 201, await created.text()
    replay = await api.client.post("/", data=body, headers=headers)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.json())["pointer"] == (await created.json())["pointer"]
    assert await api.pointer_count() == 1


async def test_the_server_purges_responses_older_than_the_retention_at_start(
    backend: str, tmp_path: Path, clock: ManualClock
) -> None:
    data_dir = tmp_path / "data"
    async with process_database(backend, data_dir) as url:
        db = Database(url_of(backend, data_dir, url))
        try:
            for key, age in (("day-old", timedelta(hours=24)), ("hour-old", timedelta(hours=1))):
                at = clock.now() - age
                await idempotency.claim(db, 1, key, "f", at)
                await idempotency.complete(db, 1, key, at, 201, "{}", "application/json")
            config = Config(
                data_dir=data_dir, database_url=url or None, port=0, auth_token="admin-key", btp_port=None
            )
            async with (
                running(config, clock=clock, ilp=StaticIlpEndpoint("private.t"), announce=lambda _: None),
                db.read() as session,
            ):
                keys = set((await session.scalars(select(IdempotentRequest.key))).all())
            assert keys == {"hour-old"}
        finally:
            await db.close()
