"""LND adapter (REST gateway): pay an invoice once, and find out what became of a payment.

The payment hash is the idempotency key: LND refuses to pay a hash again ("invoice is already paid",
"payment is in transition"), and `track` answers for a hash at any time. Every way of not hearing the
end of a payment (time-out, dropped stream, stream closed while in flight) is `Unknown`; `Failed` only
comes from LND's own final verdict or from LND not knowing the payment at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from yarl import URL

from spsp_pull.bridge.backends.errors import (
    BackendAuthError,
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
)
from spsp_pull.bridge.backends.lightning import NodeInvoice, PaymentProof
from spsp_pull.bridge.backends.ndjson import json_lines
from spsp_pull.bridge.backends.outcomes import Failed, Outcome, Succeeded, Unknown
from spsp_pull.bridge.network import Network, network_from_lnd

NOT_INITIATED = "not-initiated"
_GRPC_NOT_FOUND = 5
_FINAL_STATUS: dict[object, str] = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", 2: "SUCCEEDED", 3: "FAILED"}
_ZERO_PREIMAGE = bytes(32)


class LndError(BackendError):
    """LND refused a request (gRPC status `code`, carried over HTTP `http_status`)."""

    def __init__(self, http_status: int, code: object, message: str) -> None:
        super().__init__(f"LND error {code} (HTTP {http_status}): {message}")
        self.http_status = http_status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LndConfig:
    url: str
    macaroon_hex: str = field(repr=False)
    tls_cert_pem: bytes | None = field(default=None, repr=False)
    timeout: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        try:
            bytes.fromhex(self.macaroon_hex)
        except ValueError:
            raise ValueError("the LND macaroon must be given as hex") from None


@dataclass(frozen=True)
class _Refused:
    code: object
    message: str


class Lnd:
    def __init__(self, session: aiohttp.ClientSession, config: LndConfig) -> None:
        self._session = session
        self._base = URL(config.url)
        self._headers = {"Grpc-Metadata-macaroon": config.macaroon_hex}
        self._ssl: ssl.SSLContext | bool = True
        if config.tls_cert_pem is not None:
            self._ssl = ssl.create_default_context(cadata=config.tls_cert_pem.decode("ascii"))
        self._timeout = config.timeout

    async def network(self) -> Network:
        info = await self._get("/v1/getinfo")
        for chain in info.get("chains") or []:
            if isinstance(chain, dict) and chain.get("chain") == "bitcoin":
                return network_from_lnd(str(chain.get("network")))
        raise BackendProtocolError("LND's getinfo names no bitcoin chain")

    async def decode_invoice(self, invoice: str) -> NodeInvoice:
        decoded = await self._get(f"/v1/payreq/{invoice}")
        try:
            amount = int(decoded.get("num_msat") or 0)
            expires_at = datetime.fromtimestamp(int(decoded["timestamp"]), UTC) + timedelta(
                seconds=int(decoded["expiry"])
            )
            payment_hash = bytes.fromhex(decoded["payment_hash"])
            return NodeInvoice(payment_hash, amount or None, expires_at, str(decoded["destination"]))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise BackendProtocolError(f"LND decoded the invoice unexpectedly: {decoded!r}") from exc

    async def outbound_msat(self) -> int:
        balance = await self._get("/v1/balance/channels")
        try:
            return int(balance["local_balance"]["msat"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendProtocolError(f"LND's channel balance is unreadable: {balance!r}") from exc

    async def pay(
        self,
        invoice: str,
        payment_hash: bytes,
        *,
        fee_limit_msat: int,
        time_limit: timedelta,
        amount_msat: int | None = None,
    ) -> Outcome[PaymentProof]:
        """Pay `invoice` (whose hash is `payment_hash`); `amount_msat` only for an amountless invoice.

        A refusal is followed by `track`: "already paid" then reads as the success it is, and only a
        payment LND does not know at all becomes Failed.
        """
        if fee_limit_msat <= 0:
            raise ValueError("a fee limit of zero makes most payments fail; give a positive one")
        seconds = max(1, math.ceil(time_limit.total_seconds()))
        body: dict[str, Any] = {
            "payment_request": invoice,
            "fee_limit_msat": str(fee_limit_msat),
            "timeout_seconds": seconds,
            "no_inflight_updates": True,
        }
        if amount_msat is not None:
            body["amt_msat"] = str(amount_msat)
        verdict = await self._stream(
            "POST", "/v2/router/send", payment_hash, timedelta(seconds=seconds) + self._timeout, json=body
        )
        if not isinstance(verdict, _Refused):
            return verdict
        tracked = await self.track(payment_hash, wait=timedelta(0))
        if isinstance(tracked, Failed) and tracked.reason == NOT_INITIATED:
            return Failed("refused", verdict.message)
        return tracked

    async def track(self, payment_hash: bytes, *, wait: timedelta) -> Outcome[PaymentProof]:
        """The payment's fate, waiting up to `wait` for an in-flight payment to finish (zero: only
        report the current state)."""
        path = "/v2/router/track/" + base64.urlsafe_b64encode(payment_hash).decode("ascii")
        current_only = wait <= timedelta(0)
        verdict = await self._stream(
            "GET",
            path,
            payment_hash,
            self._timeout if current_only else wait,
            current_only=current_only,
            params={"no_inflight_updates": "false"},
        )
        if not isinstance(verdict, _Refused):
            return verdict
        if verdict.code == _GRPC_NOT_FOUND:
            return Failed(NOT_INITIATED, verdict.message)
        return Unknown(f"LND refused to track the payment: {verdict.message}")

    async def _get(self, path: str) -> Any:
        try:
            async with self._session.get(
                self._url(path),
                headers=self._headers,
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=self._timeout.total_seconds()),
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendUnavailable(f"LND did not answer {path}: {exc!r}") from exc
        try:
            body = json.loads(raw)
        except ValueError:
            raise BackendProtocolError(f"LND answered {path} with HTTP {status} and no JSON") from None
        if status != 200:
            error = _error_of(body) or {}
            raise _refusal_error(status, error.get("code"), str(error.get("message", "")))
        if not isinstance(body, dict):
            raise BackendProtocolError(f"LND answered {path} with a non-object")
        return body

    def _url(self, path: str) -> URL:
        return self._base.with_path(self._base.path.rstrip("/") + path)

    async def _stream(
        self,
        method: str,
        path: str,
        payment_hash: bytes,
        within: timedelta,
        *,
        current_only: bool = False,
        **kwargs: Any,
    ) -> Outcome[PaymentProof] | _Refused:
        latest = "no update"
        try:
            async with self._session.request(
                method,
                self._url(path),
                headers=self._headers,
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=within.total_seconds()),
                **kwargs,
            ) as response:
                async for message in json_lines(response):
                    error = _error_of(message)
                    if error is not None:
                        code, text = error.get("code"), str(error.get("message", ""))
                        if _is_auth_failure(response.status, text):
                            raise _refusal_error(response.status, code, text)
                        return _Refused(code, text)
                    payment = message.get("result") if isinstance(message, dict) else None
                    if not isinstance(payment, dict):
                        return Unknown(f"LND sent an unreadable update: {message!r}")
                    verdict = _verdict(payment, payment_hash)
                    if verdict is not None:
                        return verdict
                    latest = f"last status {payment.get('status')}"
                    if current_only:
                        return Unknown(f"the payment is still in flight ({latest})")
        except TimeoutError:
            return Unknown(f"no final status within {within} ({latest})")
        except (aiohttp.ClientError, BackendProtocolError) as exc:
            return Unknown(f"the payment stream was lost ({latest}): {exc!r}")
        return Unknown(f"the payment stream ended without a final status ({latest})")


def _verdict(payment: dict[str, Any], payment_hash: bytes) -> Outcome[PaymentProof] | None:
    if payment.get("payment_hash") != payment_hash.hex():
        return Unknown(f"LND reported on another payment: {payment.get('payment_hash')!r}")
    status = _FINAL_STATUS.get(payment.get("status"))
    if status == "FAILED":
        return Failed(str(payment.get("failure_reason") or "FAILURE_REASON_NONE"))
    if status != "SUCCEEDED":
        return None
    try:
        preimage = bytes.fromhex(payment["payment_preimage"])
        proof = PaymentProof(preimage, int(payment["value_msat"]), int(payment["fee_msat"]))
    except (KeyError, TypeError, ValueError):
        return Unknown(f"LND reported success without a readable proof: {payment!r}")
    if preimage == _ZERO_PREIMAGE or hashlib.sha256(preimage).digest() != payment_hash:
        return Unknown("LND reported success with a preimage that does not match the payment hash")
    return Succeeded(proof)


def _error_of(message: Any) -> dict[str, Any] | None:
    """The error object of a stream line (`{"error": {...}}`) or of a unary reply (`{code, message}`)."""
    if not isinstance(message, dict):
        return None
    error = message.get("error")
    if isinstance(error, dict):
        return error
    if "result" not in message and "message" in message:
        return message
    return None


def _is_auth_failure(http_status: int, message: str) -> bool:
    # Macaroon errors reach REST clients as gRPC code 2 (Unknown, HTTP 500) with these messages.
    return http_status in (401, 403) or "macaroon" in message or "verification failed" in message


def _refusal_error(http_status: int, code: object, message: str) -> BackendError:
    if _is_auth_failure(http_status, message):
        return BackendAuthError(f"LND refused the macaroon: {message}")
    return LndError(http_status, code, message)
