"""The server-rendered pages: templates, stylesheet, scripts, security headers and form protection.

`setup_web(app)` makes an application serve pages: it sets up the Jinja environment (autoescaping on),
the `/static/` files and the CSRF key. Handlers answer with `render(request, "page.html", {...})`.
"""

from spsp_pull.web.setup import setup_web
from spsp_pull.web.templating import render

__all__ = ["render", "setup_web"]
