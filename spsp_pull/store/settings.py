"""Settings every instance must share, kept in the database (e.g. the STREAM server secret)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from spsp_pull.store import models
from spsp_pull.store.database import Database


async def shared_setting(db: Database, name: str, make: Callable[[], str]) -> str:
    """The stored value of `name`, created with `make()` by whichever instance asks first."""
    async with db.read() as session:
        row = await session.get(models.ServerSetting, name)
        if row is not None:
            return row.value
    try:
        async with db.write() as session:
            value = make()
            session.add(models.ServerSetting(name=name, value=value))
        return value
    except IntegrityError:
        async with db.read() as session:
            return (await session.get_one(models.ServerSetting, name)).value
