"""Fixtures of the page tests that need no browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spsp_pull.domain.clock import ManualClock
from spsp_pull.store.database import Database
from tests.api.serving import served_api
from tests.web.app_client import AppSite


@pytest.fixture
async def app_site(db: Database, clock: ManualClock) -> AsyncIterator[AppSite]:
    """The app on 127.0.0.1 over a real database, its account's pages driven over HTTP."""
    async with served_api(db, clock) as served:
        yield AppSite(served.client, served.context, clock, served.wallet_key, served.other_key)
