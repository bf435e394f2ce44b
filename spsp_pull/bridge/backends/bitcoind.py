"""Bitcoin Core wallet adapter (JSON-RPC): build and sign a batch, broadcast it, follow its confirmations.

The transaction is created and signed first (`walletcreatefundedpsbt` → `walletprocesspsbt` →
`finalizepsbt`) so the caller can store its txid and hex before anything is broadcast; broadcasting the
stored hex again is harmless, which makes recovery after a crash or a time-out a plain re-broadcast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from embit.psbt import PSBT
from embit.script import address_to_scriptpubkey
from embit.transaction import Transaction

from spsp_pull.bridge.amounts import SAT_PER_BTC
from spsp_pull.bridge.backends.errors import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
)
from spsp_pull.bridge.backends.jsonrpc import JsonRpcClient, RpcEndpoint, RpcError
from spsp_pull.bridge.backends.onchain import Outpoint, PayTo, SignedTransaction, TxStatus
from spsp_pull.bridge.backends.outcomes import Failed, Outcome, Succeeded, Unknown
from spsp_pull.bridge.network import Network, network_from_bitcoind_chain

RPC_INVALID_ADDRESS = -5
RPC_INSUFFICIENT_FUNDS = -6
RPC_INVALID_PARAMETER = -8
RPC_WALLET_LOCKED = -13
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27


class InvalidAddress(RpcError):
    pass


class InsufficientFunds(RpcError):
    pass


class InvalidParameter(RpcError):
    """Among others: the same address twice in one transaction."""


class WalletLocked(RpcError):
    pass


_TYPED_ERRORS: dict[int, type[RpcError]] = {
    RPC_INVALID_ADDRESS: InvalidAddress,
    RPC_INSUFFICIENT_FUNDS: InsufficientFunds,
    RPC_INVALID_PARAMETER: InvalidParameter,
    RPC_WALLET_LOCKED: WalletLocked,
}


@dataclass(frozen=True)
class BitcoindConfig:
    endpoint: RpcEndpoint
    timeout: timedelta = timedelta(seconds=30)

    @classmethod
    def from_url(cls, url: str, *, timeout: timedelta = timedelta(seconds=30)) -> BitcoindConfig:
        """From `SPSP_BITCOIND_URL`, e.g. `http://user:pass@127.0.0.1:8332/wallet/payouts`."""
        return cls(RpcEndpoint.from_url(url), timeout)


class Bitcoind:
    def __init__(self, session: aiohttp.ClientSession, config: BitcoindConfig) -> None:
        self._rpc = JsonRpcClient(session, config.endpoint, timeout=config.timeout)

    async def network(self) -> Network:
        info = await self._call("getblockchaininfo")
        return network_from_bitcoind_chain(_field(info, "chain", str))

    async def create_transaction(
        self, outputs: Sequence[PayTo], *, conf_target: int, fallback_fee_rate: Decimal
    ) -> SignedTransaction:
        """One signed, unbroadcast transaction paying `outputs`; its inputs stay locked in the wallet.

        The fee follows `conf_target` when the node can estimate one, else `fallback_fee_rate` (sat/vB).
        Addresses must be distinct (Bitcoin Core refuses a repeated address with InvalidParameter).
        """
        if not outputs:
            raise ValueError("a transaction needs at least one output")
        options: dict[str, Any] = {"replaceable": True, "lock_unspents": True}
        if await self._can_estimate(conf_target):
            options |= {"conf_target": conf_target, "estimate_mode": "economical"}
        else:
            options["fee_rate"] = str(fallback_fee_rate)
        wanted = [{output.address: _btc_text(output.amount_sat)} for output in outputs]
        funded = await self._call("walletcreatefundedpsbt", [], wanted, 0, options)
        psbt = _field(funded, "psbt", str)
        inputs = _psbt_inputs(psbt)
        try:
            signed = await self._call("walletprocesspsbt", psbt)
            final = await self._call("finalizepsbt", _field(signed, "psbt", str))
            if final.get("complete") is not True:
                raise BackendError("the wallet could not sign every input")
            tx_hex = _field(final, "hex", str)
            _check_outputs(tx_hex, outputs)
        except Exception:
            await self._release_quietly(inputs)
            raise
        return SignedTransaction(_txid(tx_hex), tx_hex, _sat(funded.get("fee")), inputs)

    async def broadcast(self, tx_hex: str) -> Outcome[str]:
        """Send a stored transaction to the network; safe to repeat with the same hex.

        Succeeded: in the mempool or already in a block. Failed: the node refused it and its wallet
        does not know it as sent (the inputs stay locked: release them before building again).
        Unknown: no verdict; reconcile with `transaction_status` or broadcast again.
        """
        txid = _txid(tx_hex)
        try:
            accepted = await self._call("sendrawtransaction", tx_hex)
        except RpcError as exc:
            if exc.code == RPC_VERIFY_ALREADY_IN_CHAIN:
                return Succeeded(txid)
            if exc.code in (RPC_VERIFY_ERROR, RPC_VERIFY_REJECTED):
                return await self._after_rejection(txid, exc)
            return Unknown(str(exc))
        except (BackendUnavailable, BackendProtocolError) as exc:
            return Unknown(str(exc))
        if accepted != txid:
            return Unknown(f"the node answered with txid {accepted!r} for {txid}")
        return Succeeded(txid)

    async def transaction_status(self, txid: str) -> TxStatus | None:
        """Confirmations of a wallet transaction (negative: conflicted); None if the wallet never saw it."""
        try:
            tx = await self._call("gettransaction", txid)
        except InvalidAddress:  # -5 "Invalid or non-wallet transaction id"
            return None
        conflicts = tx.get("walletconflicts") or []
        replaced_by = tx.get("replaced_by_txid")
        return TxStatus(
            txid,
            _field(tx, "confirmations", int),
            tuple(str(conflict) for conflict in conflicts),
            str(replaced_by) if replaced_by else None,
        )

    async def release_inputs(self, inputs: Sequence[Outpoint]) -> None:
        """Unlock inputs of a transaction that will not be broadcast; already unlocked ones are skipped."""
        locked = await self._call("listlockunspent")
        held = {(str(entry.get("txid")), entry.get("vout")) for entry in locked}
        release = [{"txid": i.txid, "vout": i.vout} for i in inputs if (i.txid, i.vout) in held]
        if release:
            await self._call("lockunspent", True, release)

    async def _call(self, method: str, *params: Any) -> Any:
        try:
            return await self._rpc.call(method, *params)
        except RpcError as exc:
            typed = _TYPED_ERRORS.get(exc.code)
            if typed is None:
                raise
            raise typed(exc.code, exc.message) from None

    async def _can_estimate(self, conf_target: int) -> bool:
        # Without fee history (regtest, a fresh node) the reply has "errors" and no "feerate".
        estimate = await self._call("estimatesmartfee", conf_target)
        return isinstance(estimate, dict) and estimate.get("feerate") is not None

    async def _after_rejection(self, txid: str, rejection: RpcError) -> Outcome[str]:
        try:
            status = await self.transaction_status(txid)
        except BackendError as exc:
            return Unknown(f"{rejection}; and the wallet could not be asked: {exc}")
        if status is None or status.conflicted:
            return Failed(f"rpc-{-rejection.code}", rejection.message)
        if status.confirmations > 0:
            return Succeeded(txid)
        return Unknown(f"{rejection}; but the wallet holds the transaction unconfirmed")

    async def _release_quietly(self, inputs: Sequence[Outpoint]) -> None:
        with contextlib.suppress(BackendError):
            await self.release_inputs(inputs)


def _field(reply: Any, name: str, kind: type[Any]) -> Any:
    if not isinstance(reply, dict) or not isinstance(reply.get(name), kind) or isinstance(reply[name], bool):
        raise BackendProtocolError(f"bitcoind's reply lacks {name!r}: {reply!r}")
    return reply[name]


def _btc_text(sat: int) -> str:
    if sat <= 0:
        raise ValueError("output amounts must be positive")
    return f"{sat // SAT_PER_BTC}.{sat % SAT_PER_BTC:08d}"


def _sat(btc: object) -> int:
    if not isinstance(btc, Decimal | int) or isinstance(btc, bool):
        raise BackendProtocolError(f"bitcoind sent {btc!r} where an amount belongs")
    sat = Decimal(btc) * SAT_PER_BTC
    if sat != sat.to_integral_value():
        raise BackendProtocolError(f"bitcoind sent an amount with a fraction of a satoshi: {btc}")
    return int(sat)


def _txid(tx_hex: str) -> str:
    try:
        return str(Transaction.from_string(tx_hex).txid().hex())
    except Exception as exc:
        raise ValueError("not a serialized transaction") from exc


def _psbt_inputs(psbt: str) -> tuple[Outpoint, ...]:
    try:
        vin = PSBT.from_string(psbt).tx.vin
    except Exception as exc:
        raise BackendProtocolError("bitcoind returned an unreadable PSBT") from exc
    return tuple(Outpoint(tx_input.txid.hex(), tx_input.vout) for tx_input in vin)


def _check_outputs(tx_hex: str, outputs: Sequence[PayTo]) -> None:
    paid = {(bytes(out.script_pubkey.data), out.value) for out in Transaction.from_string(tx_hex).vout}
    for output in outputs:
        if (address_to_scriptpubkey(output.address).data, output.amount_sat) not in paid:
            raise BackendProtocolError(
                f"the signed transaction does not pay {output.amount_sat} sat to {output.address}"
            )
