"""Newline-delimited JSON streams, as the grpc-gateway sends server-streaming RPCs (LND REST)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from spsp_pull.bridge.backends.errors import BackendProtocolError

MAX_LINE = 1 << 20


async def json_lines(response: aiohttp.ClientResponse, *, max_line: int = MAX_LINE) -> AsyncIterator[Any]:
    """Each JSON value of the body as it arrives. A dropped connection surfaces as aiohttp's
    ClientPayloadError / ClientConnectionError; a cut-off last line as BackendProtocolError."""
    pending = b""
    async for chunk in response.content.iter_any():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield _parse(line)
        if len(pending) > max_line:
            raise BackendProtocolError(f"a stream line is longer than {max_line} bytes")
    if pending.strip():
        yield _parse(pending)


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise BackendProtocolError("the stream carried a line that is not JSON") from None
