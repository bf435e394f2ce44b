"""Bitcoin Core's JSON-RPC over HTTP: request envelopes, basic auth, and both reply dialects.

Requests are JSON-RPC 2.0. Bitcoin Core 28 and later answer them with HTTP 200 and a 2.0 envelope;
older nodes answer the legacy way (HTTP 500, or 404 for an unknown method, with `{result, error, id}`),
so errors are read from the body whatever the status. Numbers are parsed as `Decimal`, never float.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from yarl import URL

from spsp_pull.bridge.backends.errors import (
    BackendAuthError,
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
)


class RpcError(BackendError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"RPC error {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RpcEndpoint:
    """Where to send requests, and the `Authorization` header; `repr` never shows the credentials."""

    url: str
    authorization: str = field(repr=False)

    @classmethod
    def from_url(cls, url: str) -> RpcEndpoint:
        """From `http://user:password@host:port[/wallet/<name>]` (user and password percent-encoded)."""
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the bitcoind URL must be http(s)://user:password@host:port[/wallet/<name>]")
        if parsed.user is None or parsed.password is None:
            raise ValueError("the bitcoind URL must carry user:password (or __cookie__:<secret>)")
        token = base64.b64encode(f"{parsed.user}:{parsed.password}".encode()).decode("ascii")
        return cls(str(parsed.with_user(None).with_password(None)), f"Basic {token}")


class JsonRpcClient:
    def __init__(self, session: aiohttp.ClientSession, endpoint: RpcEndpoint, *, timeout: timedelta) -> None:
        self._session = session
        self._endpoint = endpoint
        self._timeout = aiohttp.ClientTimeout(total=timeout.total_seconds())
        self._ids = itertools.count(1)

    async def call(self, method: str, *params: Any) -> Any:
        """The `result` of `method`; raises RpcError, BackendAuthError, BackendUnavailable or
        BackendProtocolError."""
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
        headers = {"Authorization": self._endpoint.authorization, "Content-Type": "application/json"}
        try:
            async with self._session.post(
                self._endpoint.url, data=json.dumps(body), headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendUnavailable(f"bitcoind did not answer {method}: {exc!r}") from exc
        if status in (401, 403):
            raise BackendAuthError(f"bitcoind refused the credentials (HTTP {status})")
        return _result(method, status, raw, request_id)


def _result(method: str, status: int, raw: bytes, request_id: int) -> Any:
    try:
        reply = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise BackendProtocolError(f"bitcoind answered {method} with HTTP {status} and no JSON") from None
    if not isinstance(reply, dict):
        raise BackendProtocolError(f"bitcoind answered {method} with a non-object")
    error = reply.get("error")
    if error is not None:
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            raise BackendProtocolError(f"bitcoind answered {method} with a malformed error: {error!r}")
        raise RpcError(error["code"], str(error.get("message", "")))
    if status != 200 or reply.get("id") != request_id or "result" not in reply:
        raise BackendProtocolError(f"bitcoind answered {method} with HTTP {status} and no result")
    return reply["result"]
