"""One access log line and one count in the metrics for every HTTP request, however it was served.

aiohttp calls `AccessLogger` for the requests it handles; the query fast path calls `record_access`
for the ones it answers itself. Both end in `record_access`, so the lines and the counters are the
same. Lines have aiohttp's default layout and go to aiohttp's `aiohttp.access` logger at INFO.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.log import access_logger

from spsp_pull.api.request_id import HEADER as REQUEST_ID_HEADER
from spsp_pull.metrics import Metrics

REQUESTS_METRIC = "spsp_http_requests_total"


@dataclass(frozen=True, slots=True)
class Access:
    remote: str | None
    request_line: str  # e.g. "GET /abc HTTP/1.1"
    method: str
    status: int
    size: int  # bytes sent, head and body
    referer: str | None
    user_agent: str | None
    request_id: str | None = None


def record_access(
    metrics: Metrics, access: Access, elapsed: float, logger: logging.Logger = access_logger
) -> None:
    metrics.http_request(access.method, access.status)
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            '%s [%s] "%s" %d %d "%s" "%s"',
            access.remote or "-",
            _clock_text(int(time.time() - elapsed)),
            access.request_line,
            access.status,
            access.size,
            access.referer or "-",
            access.user_agent or "-",
            extra={"request_id": access.request_id},
        )


@lru_cache(maxsize=4)
def _clock_text(second: int) -> str:
    """When a request started, as aiohttp's `%t` writes it (in UTC)."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))


def access_logger_class(metrics: Metrics) -> type[AbstractAccessLogger]:
    """aiohttp's `access_log_class` for an application counting in `metrics`: each request aiohttp
    handles, those it refuses as malformed included, goes through `record_access`."""

    class AccessLogger(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            version = request.version
            access = Access(
                remote=request.remote,
                request_line=f"{request.method} {request.path_qs} HTTP/{version.major}.{version.minor}",
                method=request.method,
                status=response.status,
                size=response.body_length,
                referer=request.headers.get("Referer"),
                user_agent=request.headers.get("User-Agent"),
                request_id=response.headers.get(REQUEST_ID_HEADER),
            )
            record_access(metrics, access, time, self.logger)

    return AccessLogger
