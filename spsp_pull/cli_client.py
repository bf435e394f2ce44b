"""The command line's HTTP client: the API key it presents, one request to a running server, the answer."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp

from spsp_pull.cli_errors import Unreachable, UsageError, http_error
from spsp_pull.config import DEFAULT_DATA_DIR
from spsp_pull.http_problem import json_or_text
from spsp_pull.payment_pointer import client_ssl_context


def api_key(args: argparse.Namespace) -> str:
    if args.api_key:
        return str(args.api_key)
    for name in ("SPSP_API_KEY", "SPSP_AUTH_TOKEN"):
        if os.environ.get(name):
            return os.environ[name]
    token_file = Path(os.environ.get("SPSP_DATA_DIR", DEFAULT_DATA_DIR)) / "auth-token"
    if token_file.exists():
        return token_file.read_text().strip()
    raise UsageError(
        f"no API key (and no {token_file})",
        "pass --api-key, set SPSP_API_KEY, or run where the server's data directory is (SPSP_DATA_DIR)",
    )


def call(args: argparse.Namespace, method: str, path: str, body: object = None) -> Any:
    return asyncio.run(request(method, args.server.rstrip("/") + path, api_key(args), body))


async def request(method: str, url: str, key: str | None, body: object) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = aiohttp.ClientTimeout(total=30)
    tls = client_ssl_context() if url.startswith("https:") else True
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, json=body, headers=headers, ssl=tls) as response,
        ):
            data = json_or_text(await response.text())
            if response.status >= 400:
                raise http_error(
                    response.status,
                    data,
                    hint_404="check the token, and that the API key is the key of the account that owns it",
                    hint_401="check --api-key / SPSP_API_KEY (the admin key: <data dir>/auth-token)",
                )
            return data
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unreachable(
            f"cannot reach {url}: {exc or 'timed out'}",
            "is the server running? start it with scripts/serve, or give --server / SPSP_SERVER",
        ) from None


def show_json(value: object) -> int:
    print(json.dumps(value, indent=2))
    return 0
