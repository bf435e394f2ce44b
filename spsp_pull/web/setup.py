"""Making an aiohttp application serve pages."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from spsp_pull.web import csrf
from spsp_pull.web.templating import setup_templates

STATIC_DIR = Path(__file__).parent / "static"


def setup_web(app: web.Application) -> None:
    """Templates, the CSRF key and `/static/` (stylesheet, scripts). Security headers come from
    `spsp_pull.web.headers.security_headers_middleware`, which the application lists among its middlewares."""
    setup_templates(app)
    app[csrf.KEY] = csrf.new_key()
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
