"""Making an aiohttp application serve pages."""

from __future__ import annotations

import secrets
from pathlib import Path

from aiohttp import web

from spsp_pull.api.context import CONTEXT
from spsp_pull.store.settings import shared_setting
from spsp_pull.web import csrf
from spsp_pull.web.templating import setup_templates

STATIC_DIR = Path(__file__).parent / "static"
CSRF_KEY_SETTING = "csrf_key"


def setup_web(app: web.Application) -> None:
    """Templates, the CSRF key and `/static/` (stylesheet, scripts). Security headers come from
    `spsp_pull.web.headers.security_headers_middleware`, which the application lists among its middlewares."""
    setup_templates(app)
    app.on_startup.append(_load_csrf_key)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)


async def _load_csrf_key(app: web.Application) -> None:
    # In the database: a form rendered by one instance (or before a restart) is accepted by another.
    key = await shared_setting(app[CONTEXT].db, CSRF_KEY_SETTING, lambda: secrets.token_hex(32))
    app[csrf.KEY] = bytes.fromhex(key)
