"""`SPSP_LOG_FORMAT=json`: a real server process writes one JSON object per line, and the lines of an HTTP
request carry its request id, which the response echoes in `X-Request-Id` (the client's when sane)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from harness.server_process import ServerProcess, create_pointer
from spsp_pull.api.request_id import request_id
from spsp_pull.config import from_environment
from spsp_pull.config_error import ConfigError
from spsp_pull.logging_setup import REQUEST_ID, JsonFormatter

ADMIN = "json-logs-admin"


def log_lines(server: ServerProcess) -> list[dict[str, object]]:
    """Every line the server wrote, each of which must be a JSON object."""
    lines = server.output.decode().splitlines()
    entries = []
    for line in lines:
        if not line.startswith("{"):
            continue  # the start-up announcements go to stdout as plain text (they are not log lines)
        entry = json.loads(line)
        assert isinstance(entry, dict)
        entries.append(entry)
    return entries


async def get(url: str, headers: dict[str, str]) -> str:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        await response.read()
        return response.headers["X-Request-Id"]


async def test_a_json_server_logs_each_request_with_its_id(tmp_path: Path) -> None:
    env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_LOG_FORMAT": "json"}
    async with ServerProcess(tmp_path / "server", env=env) as server:
        token = await create_pointer(server, ADMIN)
        # Through aiohttp, and through the query fast path (a plain pointer query).
        assert await get(f"{server.url}/healthz", {"X-Request-Id": "health-check-1"}) == "health-check-1"
        assert await get(f"{server.url}/{token}", {"X-Request-Id": "query.2:abc"}) == "query.2:abc"
        made = await get(f"{server.url}/{token}", {"X-Request-Id": "no spaces allowed"})
        assert made != "no spaces allowed" and " " not in made
        made_for_aiohttp = await get(f"{server.url}/nope/nope", {})
    lines = [line for line in server.output.decode().splitlines() if line.strip()]
    entries = log_lines(server)
    assert len(entries) >= len(lines) - 3  # only the start-up announcements are not JSON
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert str(entry["time"]).endswith("Z")
    access = {entry["request_id"]: entry for entry in entries if entry["logger"] == "aiohttp.access"}
    assert "GET /healthz HTTP/1.1" in str(access["health-check-1"]["message"])
    assert f"GET /{token} HTTP/1.1" in str(access["query.2:abc"]["message"])
    assert f"GET /{token} HTTP/1.1" in str(access[made]["message"])
    assert "GET /nope/nope HTTP/1.1" in str(access[made_for_aiohttp]["message"])
    assert access["health-check-1"]["level"] == "INFO"


async def test_the_text_format_stays_the_default(tmp_path: Path) -> None:
    async with ServerProcess(tmp_path / "server", env={"SPSP_AUTH_TOKEN": ADMIN}) as server:
        assert await get(f"{server.url}/healthz", {"X-Request-Id": "text-1"}) == "text-1"
    assert not log_lines(server)
    assert '"GET /healthz HTTP/1.1" 200' in server.output.decode()


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="SPSP_LOG_FORMAT must be one of: text, json"):
        from_environment({"SPSP_LOG_FORMAT": "xml"})


def test_a_request_id_is_the_clients_only_when_sane() -> None:
    assert request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for insane in ("", "a b", "x" * 129, "caf\u00e9", "line\r\nInjected: 1"):
        made = request_id(insane)
        assert made != insane and request_id(made) == made
    assert request_id(None) != request_id(None)


def test_a_json_line_holds_the_request_id_and_the_traceback() -> None:
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("spsp_pull.test_json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    token = REQUEST_ID.set("req-7")
    try:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            logger.exception("failed: %s", "x")
        logger.error("no id here", extra={"request_id": "req-8"})
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    first, second = written.getvalue().splitlines()
    entry = json.loads(first)
    assert entry["message"] == "failed: x" and entry["level"] == "ERROR"
    assert entry["logger"] == "spsp_pull.test_json_logs" and entry["request_id"] == "req-7"
    assert "ValueError: bad\nthing" in str(entry["exception"])
    assert json.loads(second)["request_id"] == "req-8"  # the line's own id wins
