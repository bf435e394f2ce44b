"""A fake LND REST gateway with scripted payment outcomes and fault injection.

Reproduced from LND's grpc-gateway: the `Grpc-Metadata-macaroon` header (macaroon errors are gRPC code
2, HTTP 500), snake_case JSON with int64 fields as strings, enum names as strings, server streams as one
JSON object per line (`{"result": Payment}` / `{"error": Status}`; an error before the first message sets
the HTTP status from the gRPC code), `no_inflight_updates`, payment hashes in the track path as url-safe
or percent-escaped standard base64, "invoice is already paid" / "payment is in transition" (code 6) for a
hash already succeeded / in flight, a retry allowed after FAILED, and "payment isn't initiated" (code 5).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import bolt11
from aiohttp import web

from tests.bridge.fakes.server import MAX_HOLD, LoopbackServer

_HTTP_STATUS = {2: 500, 3: 400, 5: 404, 6: 409}
_LND_NETWORK = {"bc": "mainnet", "tb": "testnet", "tbs": "signet", "bcrt": "regtest"}
_ZERO_PREIMAGE = "00" * 32


@dataclass(frozen=True)
class Script:
    """How the network will treat a payment, and how its stream reaches the client.

    result: `succeed` (needs a registered preimage), `fail` (with `failure_reason`), `in_flight` (stays
    IN_FLIGHT until `settle` / `fail`). delivery: `normal`; `drop` (half a line, then a connection
    reset); `stall` (no reply until the client gives up or the server stops).
    """

    result: Literal["succeed", "fail", "in_flight"] = "succeed"
    failure_reason: str = "FAILURE_REASON_NO_ROUTE"
    fee_msat: int = 1_000
    delivery: Literal["normal", "drop", "stall"] = "normal"


@dataclass
class Payment:
    payment_hash: str
    payment_request: str
    value_msat: int
    index: int
    created_ns: int
    status: str = "IN_FLIGHT"
    fee_msat: int = 0
    preimage: str = _ZERO_PREIMAGE
    failure_reason: str = "FAILURE_REASON_NONE"

    def as_json(self) -> dict[str, Any]:
        htlcs = []
        if self.status != "FAILED" or self.failure_reason != "FAILURE_REASON_NO_ROUTE":
            htlc_status = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED"}.get(self.status, "IN_FLIGHT")
            preimage = bytes.fromhex(self.preimage) if self.status == "SUCCEEDED" else b""
            htlcs.append(
                {
                    "attempt_id": str(self.index),
                    "status": htlc_status,
                    "route": {
                        "total_time_lock": 144,
                        "total_fees": str(self.fee_msat // 1000),
                        "total_amt": str((self.value_msat + self.fee_msat) // 1000),
                        "hops": [],
                        "total_fees_msat": str(self.fee_msat),
                        "total_amt_msat": str(self.value_msat + self.fee_msat),
                    },
                    "attempt_time_ns": str(self.created_ns),
                    "resolve_time_ns": "0" if htlc_status == "IN_FLIGHT" else str(self.created_ns + 1),
                    "failure": None,
                    "preimage": base64.b64encode(preimage).decode(),
                }
            )
        return {
            "payment_hash": self.payment_hash,
            "value": str(self.value_msat // 1000),
            "creation_date": str(self.created_ns // 10**9),
            "fee": str(self.fee_msat // 1000),
            "payment_preimage": self.preimage,
            "value_sat": str(self.value_msat // 1000),
            "value_msat": str(self.value_msat),
            "payment_request": self.payment_request,
            "status": self.status,
            "fee_sat": str(self.fee_msat // 1000),
            "fee_msat": str(self.fee_msat),
            "creation_time_ns": str(self.created_ns),
            "htlcs": htlcs,
            "payment_index": str(self.index),
            "failure_reason": self.failure_reason,
            "first_hop_custom_records": {},
        }


@dataclass
class LndState:
    currency: str
    macaroon_hex: str
    outbound_msat: int = 50_000_000_000
    preimages: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, Script] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    settlements: dict[str, int] = field(default_factory=dict)
    send_requests: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class GrpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": []}


class FakeLnd(LoopbackServer):
    def __init__(
        self,
        *,
        currency: str = "bcrt",
        macaroon_hex: str = "0201036c6e64",
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        super().__init__(ssl_context=ssl_context)
        self.clock = clock
        self.state = LndState(currency, macaroon_hex)
        self.identity = "02" + hashlib.sha256(b"fake lnd identity").hexdigest()
        self._follows: dict[str, int] = {}
        self._follow_seen = asyncio.Event()

    # -- test helpers ------------------------------------------------------------------------------

    def expect(self, preimage: bytes, script: Script | None = None) -> bytes:
        """Make the network know `preimage` (the receiver's invoice); returns its payment hash."""
        payment_hash = hashlib.sha256(preimage).digest()
        self.state.preimages[payment_hash.hex()] = preimage.hex()
        if script is not None:
            self.state.scripts[payment_hash.hex()] = script
        return payment_hash

    def follows(self, payment_hash: bytes) -> int:
        """How many track requests for the payment have been answered (their streams opened)."""
        return self._follows.get(payment_hash.hex(), 0)

    async def followed(self, payment_hash: bytes, times: int) -> None:
        """Until `times` track requests for the payment have been answered."""
        while self.follows(payment_hash) < times:
            await self._follow_seen.wait()

    def settle(self, payment_hash: bytes) -> None:
        """Let an in-flight payment succeed."""
        payment = self.state.payments[payment_hash.hex()]
        self._succeed(payment, self.state.scripts.get(payment.payment_hash, Script()).fee_msat)

    def fail(self, payment_hash: bytes, reason: str = "FAILURE_REASON_TIMEOUT") -> None:
        self._fail(self.state.payments[payment_hash.hex()], reason)

    def settled(self, payment_hash: bytes) -> int:
        """How many times the receiver was paid for this hash."""
        return self.state.settlements.get(payment_hash.hex(), 0)

    # -- HTTP --------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/getinfo", self._getinfo)
        app.router.add_get("/v1/payreq/{pay_req}", self._decodepayreq)
        app.router.add_get("/v1/balance/channels", self._channel_balance)
        app.router.add_post("/v2/router/send", self._send)
        app.router.add_get("/v2/router/track/{payment_hash}", self._track)
        return app

    def _check_macaroon(self, request: web.Request) -> None:
        macaroon = request.headers.get("Grpc-Metadata-macaroon")
        if macaroon is None:
            raise GrpcError(2, "expected 1 macaroon, got 0")
        if macaroon != self.state.macaroon_hex:
            raise GrpcError(2, "verification failed: signature mismatch after caveat verification")

    def _unary(self, request: web.Request, answer: Any) -> web.Response:
        try:
            self._check_macaroon(request)
            body = answer()
        except GrpcError as error:
            return web.json_response(error.body(), status=_HTTP_STATUS.get(error.code, 500))
        return web.json_response(body)

    @staticmethod
    def _stream_error(error: GrpcError) -> web.Response:
        return web.json_response({"error": error.body()}, status=_HTTP_STATUS.get(error.code, 500))

    async def _getinfo(self, request: web.Request) -> web.Response:
        network = _LND_NETWORK[self.state.currency]
        return self._unary(
            request,
            lambda: {
                "identity_pubkey": self.identity,
                "alias": "fake-lnd",
                "num_active_channels": 1,
                "block_height": 800,
                "synced_to_chain": True,
                "testnet": network == "testnet",
                "chains": [{"chain": "bitcoin", "network": network}],
                "version": "0.18.3-beta",
            },
        )

    async def _decodepayreq(self, request: web.Request) -> web.Response:
        return self._unary(request, lambda: self._decode_json(request.match_info["pay_req"]))

    def _decode_json(self, pay_req: str) -> dict[str, Any]:
        invoice = self._decode(pay_req)
        amount = int(invoice.amount_msat or 0)
        features = invoice.features.feature_list if invoice.features else {}
        return {
            "destination": invoice.payee,
            "payment_hash": invoice.payment_hash,
            "num_satoshis": str(amount // 1000),
            "timestamp": str(invoice.date),
            "expiry": str(invoice.expiry),
            "description": invoice.description or "",
            "description_hash": invoice.description_hash or "",
            "fallback_addr": "",
            "cltv_expiry": str(invoice.min_final_cltv_expiry),
            "route_hints": [],
            "payment_addr": base64.b64encode(bytes.fromhex(invoice.payment_secret or "")).decode(),
            "num_msat": str(amount),
            "features": {
                str(feature.value * 2 + state.value): {
                    "name": feature.name,
                    "is_required": state is bolt11.FeatureState.required,
                    "is_known": isinstance(feature, bolt11.Feature),
                }
                for feature, state in features.items()
            },
            "blinded_paths": [],
        }

    def _decode(self, pay_req: str) -> bolt11.Bolt11:
        try:
            invoice = bolt11.decode(pay_req)
        except (bolt11.Bolt11Exception, ValueError, IndexError, KeyError) as exc:
            raise GrpcError(2, f"invalid payment request: {exc}") from None
        if invoice.currency != self.state.currency:
            raise GrpcError(
                2, f"invoice not for current active network '{_LND_NETWORK[self.state.currency]}'"
            )
        return invoice

    async def _channel_balance(self, request: web.Request) -> web.Response:
        outbound = self.state.outbound_msat

        def balance() -> dict[str, Any]:
            return {
                "balance": str(outbound // 1000),
                "pending_open_balance": "0",
                "local_balance": {"sat": str(outbound // 1000), "msat": str(outbound)},
                "remote_balance": {"sat": "0", "msat": "0"},
                "unsettled_local_balance": {"sat": "0", "msat": "0"},
                "unsettled_remote_balance": {"sat": "0", "msat": "0"},
                "pending_open_local_balance": {"sat": "0", "msat": "0"},
                "pending_open_remote_balance": {"sat": "0", "msat": "0"},
            }

        return self._unary(request, balance)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        try:
            self._check_macaroon(request)
            body = await request.json()
            self.state.send_requests.append(body)
            payment, script = self._start_payment(body)
        except GrpcError as error:
            return self._stream_error(error)
        except ValueError:
            return self._stream_error(GrpcError(3, "invalid JSON body"))
        inflight_updates = not body.get("no_inflight_updates", False)
        return await _stream(request, self._deliver(payment, script, inflight_updates))

    def _start_payment(self, body: dict[str, Any]) -> tuple[Payment, Script]:
        pay_req = body.get("payment_request")
        if not isinstance(pay_req, str) or not pay_req:
            raise GrpcError(3, "a payment request is required")
        if int(body.get("timeout_seconds") or 0) <= 0:
            raise GrpcError(3, "timeout_seconds must be specified")
        invoice = self._decode(pay_req)
        amt = int(body.get("amt_msat") or 0) or int(body.get("amt") or 0) * 1000
        if invoice.amount_msat and amt:
            raise GrpcError(3, "amount must not be specified when paying a non-zero amount invoice")
        if not invoice.amount_msat and not amt:
            raise GrpcError(3, "amount must be specified when paying a zero amount invoice")
        if self.clock() > invoice.date + invoice.expiry:
            raise GrpcError(2, "invoice expired")
        payment_hash = invoice.payment_hash
        existing = self.state.payments.get(payment_hash)
        if existing is not None and existing.status == "SUCCEEDED":
            raise GrpcError(6, "invoice is already paid")
        if existing is not None and existing.status == "IN_FLIGHT":
            raise GrpcError(6, "payment is in transition")
        fee_limit = int(body.get("fee_limit_msat") or 0) or int(body.get("fee_limit_sat") or 0) * 1000
        payment = Payment(
            payment_hash,
            pay_req,
            int(invoice.amount_msat or amt),
            len(self.state.payments) + 1,
            self.clock() * 10**9,
        )
        self.state.payments[payment_hash] = payment
        script = self.state.scripts.get(payment_hash, Script())
        if script.result == "fail":
            self._fail(payment, script.failure_reason)
        elif script.result == "succeed":
            if payment_hash not in self.state.preimages:
                self._fail(payment, "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")
            elif script.fee_msat > fee_limit:
                self._fail(payment, "FAILURE_REASON_NO_ROUTE")
            else:
                self._succeed(payment, script.fee_msat)
        return payment, script

    def _succeed(self, payment: Payment, fee_msat: int) -> None:
        payment.status, payment.fee_msat = "SUCCEEDED", fee_msat
        payment.preimage = self.state.preimages[payment.payment_hash]
        self.state.settlements[payment.payment_hash] = self.settled(bytes.fromhex(payment.payment_hash)) + 1
        self.state.outbound_msat -= payment.value_msat + fee_msat
        self._changed()

    def _fail(self, payment: Payment, reason: str) -> None:
        payment.status, payment.failure_reason = "FAILED", reason
        self._changed()

    def _changed(self) -> None:
        self.state.changed.set()
        self.state.changed = asyncio.Event()

    async def _deliver(
        self, payment: Payment, script: Script, inflight_updates: bool
    ) -> AsyncIterator[bytes]:
        if inflight_updates:
            yield _line({"result": {**payment.as_json(), "status": "IN_FLIGHT"}})
        if script.delivery == "drop":
            yield _line({"result": payment.as_json()})[:40]
            raise _DropConnection
        if script.delivery == "stall":
            await self.hold()
            return
        if payment.status != "IN_FLIGHT":
            yield _line({"result": payment.as_json()})

    async def _wait_for_change(self, limit: float) -> None:
        changed = asyncio.ensure_future(self.state.changed.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait([changed, stopping], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            stopping.cancel()

    async def _track(self, request: web.Request) -> web.StreamResponse:
        try:
            self._check_macaroon(request)
            payment_hash = _hash_from_path(request.match_info["payment_hash"])
            payment = self.state.payments.get(payment_hash.hex())
            if payment is None:
                raise GrpcError(5, "payment isn't initiated")
        except GrpcError as error:
            return self._stream_error(error)
        inflight_updates = request.query.get("no_inflight_updates", "false") != "true"
        self._follows[payment_hash.hex()] = self.follows(payment_hash) + 1
        seen, self._follow_seen = self._follow_seen, asyncio.Event()
        seen.set()
        return await _stream(request, self._follow(payment, inflight_updates))

    async def _follow(self, payment: Payment, inflight_updates: bool) -> AsyncIterator[bytes]:
        if payment.status != "IN_FLIGHT" or inflight_updates:
            yield _line({"result": payment.as_json()})
        deadline = asyncio.get_running_loop().time() + MAX_HOLD.total_seconds()
        while payment.status == "IN_FLIGHT" and not self.stopping.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await self._wait_for_change(remaining)
            if payment.status != "IN_FLIGHT":
                yield _line({"result": payment.as_json()})


class _DropConnection(Exception):
    """Reset the connection in the middle of a stream."""


async def _stream(request: web.Request, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except _DropConnection:
        assert request.transport is not None
        request.transport.abort()
    except ConnectionResetError:
        pass
    return response


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _hash_from_path(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.urlsafe_b64decode, base64.standard_b64decode):
        try:
            payment_hash = decode(padded)
        except (binascii.Error, ValueError):
            continue
        if len(payment_hash) == 32:
            return payment_hash
    raise GrpcError(3, "invalid payment hash")
