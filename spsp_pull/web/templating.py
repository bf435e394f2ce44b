"""The Jinja environment (autoescaping on, undefined names are errors) and `render`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp_jinja2
import jinja2
from aiohttp import web

from spsp_pull.web import csrf
from spsp_pull.web.money import format_amount, format_money
from spsp_pull.web.words import every, moment

FILTERS: dict[str, Callable[..., str]] = {
    "amount": format_amount,
    "money": format_money,
    "when": moment,
    "every": every,
}


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("spsp_pull.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        filters=FILTERS,
        default_helpers=False,
    )


def render(
    request: web.Request, template: str, context: Mapping[str, object] | None = None, *, status: int = 200
) -> web.Response:
    """The page `template` (under spsp_pull/web/templates) as an HTML response, never cached.

    Every template sees `csrf_token` (the hidden field's value for its forms), `messages` (a list of
    (level, text) flash messages: "info", "success", "error"), `nav` (a list of (href, label) links) and
    `nav_notice` (text shown beside them), each defaulting to nothing; `context` may override them."""
    page: dict[str, object] = {
        "messages": [],
        "nav": [],
        "nav_notice": None,
        "csrf_token": csrf.csrf_token(request),
    }
    page.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept, Cookie"
    csrf.set_cookie_if_issued(request, response)
    return response
