"""ILP over HTTP (RFC 0035), synchronous form: a Prepare is the body of a POST, its Fulfill or Reject the body
of the 200 response. Both peers run such a route; requests carry `Authorization: Bearer <token>`.

    link = IlpOverHttp("https://peer.example/ilp", address="g.us", outgoing_token=..., incoming_token=...)
    app.router.add_post("/ilp", link.handle)     # Prepares from the peer go to link.set_handler(...)
    reply = await link.send(prepare)             # Prepares to the peer
    await link.close()

HTTP failures become Rejects: no connection T01, no answer before expiry R00, 429 T05, 5xx T00, other 4xx F00;
so does a Fulfill that came after the Prepare expired (R00) or does not match its condition (F05).
"""

import hmac
from datetime import timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from stream import ilp
from stream.aio.plugin import (
    RESPONSE_TIMEOUT,
    IlpHandler,
    accept_reply,
    answer,
    answer_budget,
    encode_reply,
    reject,
    time_left,
)
from stream.errors import DecodeError

OCTET_STREAM = "application/octet-stream"
# A Prepare: envelope, fixed fields, the longest address and the largest data field.
MAX_BODY = 40_000


class IlpOverHttp:
    def __init__(
        self,
        peer_url: str,
        *,
        address: str = "",
        outgoing_token: str | None = None,
        incoming_token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        response_timeout: timedelta = RESPONSE_TIMEOUT,
    ) -> None:
        self.peer_url = peer_url
        self.address = address
        """Our ILP address: `triggeredBy` of the Rejects this link makes up."""
        self._outgoing = {"Content-Type": OCTET_STREAM, "Accept": OCTET_STREAM}
        if outgoing_token is not None:
            self._outgoing["Authorization"] = f"Bearer {outgoing_token}"
        self._incoming = None if incoming_token is None else f"Bearer {incoming_token}".encode()
        self._session = session
        self._owns_session = session is None
        self._response_timeout = response_timeout
        self._handler: IlpHandler | None = None

    def set_handler(self, handler: IlpHandler) -> None:
        self._handler = handler

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- sending -------------------------------------------------------------------------------------------

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        left = time_left(prepare)
        if left <= timedelta(0):
            return self._reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, "expired before it was sent")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=min(left, self._response_timeout).total_seconds())
        try:
            async with self._session.post(
                self.peer_url, data=ilp.encode(prepare), headers=self._outgoing, timeout=timeout
            ) as response:
                if response.status != HTTPStatus.OK:
                    return self._http_error(response.status)
                body = await response.read()
        except TimeoutError:
            return self._reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, "peer did not answer in time")
        except (aiohttp.ClientError, OSError):
            return self._reject(ilp.ErrorCode.T01_PEER_UNREACHABLE, "peer unreachable")
        try:
            reply = ilp.decode_reply(body)
        except DecodeError:
            return self._reject(ilp.ErrorCode.T00_INTERNAL_ERROR, "peer sent an invalid ILP reply")
        # A late or non-matching Fulfill is refused here (R00 / F05), so the sender never counts it as paid.
        return accept_reply(prepare, reply, self.address)

    def _http_error(self, status: int) -> ilp.Reject:
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            code = ilp.ErrorCode.T05_RATE_LIMITED
        elif status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            code = ilp.ErrorCode.T00_INTERNAL_ERROR
        else:
            code = ilp.ErrorCode.F00_BAD_REQUEST
        return self._reject(code, f"peer answered HTTP {status}")

    def _reject(self, code: str, message: str) -> ilp.Reject:
        return reject(code, self.address, message)

    # --- receiving -----------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp route for Prepares from the peer."""
        if self._incoming is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, self._incoming):
                raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > MAX_BODY:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
        try:
            prepare = ilp.decode_prepare(body)
        except DecodeError:
            raise web.HTTPBadRequest(text="body is not an ILP Prepare") from None
        return web.Response(body=await self._answer(prepare), content_type=OCTET_STREAM)

    async def _answer(self, prepare: ilp.Prepare) -> bytes:
        budget = answer_budget(prepare)
        handler = self._handler
        if budget is None:
            return ilp.encode(self._reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, "prepare expired"))
        if handler is None:
            return ilp.encode(self._reject(ilp.ErrorCode.F02_UNREACHABLE, "no handler"))
        return encode_reply(await answer(handler, prepare, budget, self.address), self.address)
