"""A fake Bitcoin Core node and wallet(s) speaking JSON-RPC over HTTP, with fault injection.

Reproduced from Bitcoin Core: basic auth (401, empty body, `WWW-Authenticate`), `/wallet/<name>`
routing (-18, -19), JSON-RPC 2.0 replies (HTTP 200) and legacy replies (HTTP 500 / 404 / 400), amounts
as JSON numbers with 8 decimals, the PSBT flow with real transactions signed by embit, mempool rules for
re-broadcast (same txid: OK; mined: -27; spent inputs: -25; mempool conflict: -26), the
`estimatesmartfee` reply without fee history, and negative confirmations for conflicted transactions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web
from embit import ec
from embit.finalizer import finalize_psbt
from embit.networks import NETWORKS
from embit.psbt import PSBT
from embit.script import Script, address_to_scriptpubkey, p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from yarl import URL

from tests.bridge.fakes.server import LoopbackServer

SAT_PER_BTC = 100_000_000
_EMBIT_NETWORK = {
    "main": "main",
    "test": "test",
    "testnet4": "test",
    "signet": "signet",
    "regtest": "regtest",
}
_RBF_SEQUENCE = 0xFFFFFFFD
_CHANGE_DUST = 294


class RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Coin:
    txid: str
    vout: int
    value: int
    script: bytes


@dataclass
class WalletTx:
    txid: str
    hex: str
    fee: int
    sent: int
    time: int
    height: int | None = None
    conflicted_by: str | None = None


@dataclass
class Wallet:
    name: str
    key: ec.PrivateKey
    coins: dict[tuple[str, int], Coin] = field(default_factory=dict)
    locked: set[tuple[str, int]] = field(default_factory=set)
    txs: dict[str, WalletTx] = field(default_factory=dict)

    @property
    def script(self) -> bytes:
        return bytes(p2wpkh(self.key.get_public_key()).data)


@dataclass
class Faults:
    """Switches a test flips to make the node misbehave the way real nodes do."""

    reject_broadcast: tuple[int, str] | None = None  # refuse every sendrawtransaction with this error
    hang_after_broadcast: bool = False  # accept into the mempool, then never answer
    fee_estimate_btc_kvb: Decimal | None = None  # None: no fee history, as on regtest
    legacy_rpc: bool = False  # answer like Bitcoin Core before 28 (ignore "jsonrpc": "2.0")


@dataclass
class NodeState:
    chain: str
    wallets: dict[str, Wallet]
    faults: Faults = field(default_factory=Faults)
    height: int = 100
    time: int = 1_700_000_000
    mempool: dict[str, str] = field(default_factory=dict)
    confirmed: dict[str, int] = field(default_factory=dict)
    spent_by: dict[tuple[str, int], str] = field(default_factory=dict)
    outputs: dict[tuple[str, int], Coin] = field(default_factory=dict)
    broadcasts: list[str] = field(default_factory=list)
    requests: list[tuple[str, list[Any]]] = field(default_factory=list)


def _btc(sat: int) -> Decimal:
    return Decimal(sat) / SAT_PER_BTC


def _amount_sat(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise RpcFailure(-3, "Amount is not a number or string")
    try:
        sat = Decimal(value) * SAT_PER_BTC
    except ArithmeticError:
        raise RpcFailure(-3, "Invalid amount") from None
    if not sat.is_finite() or sat != sat.to_integral_value():
        raise RpcFailure(-3, "Invalid amount")
    if sat <= 0:
        raise RpcFailure(-3, "Amount out of range")
    return int(sat)


def _dumps(value: Any) -> str:
    """JSON with Decimal amounts written as numbers (8 decimals), the way Bitcoin Core writes them."""
    if isinstance(value, Decimal):
        return f"{value:.8f}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value)


class FakeBitcoind(LoopbackServer):
    def __init__(
        self,
        *,
        chain: str = "regtest",
        user: str = "payouts",
        password: str = "s3cret:pass",
        wallets: tuple[str, ...] = ("payouts",),
    ) -> None:
        super().__init__()
        self.user = user
        self.password = password
        keys = {
            name: ec.PrivateKey(hashlib.sha256(f"fake wallet {name}".encode()).digest()) for name in wallets
        }
        self.state = NodeState(chain, {name: Wallet(name, key) for name, key in keys.items()})
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._authorization = f"Basic {token}"
        self._methods: dict[str, Callable[[Wallet | None, list[Any]], Any]] = {
            "getblockchaininfo": self._getblockchaininfo,
            "estimatesmartfee": self._estimatesmartfee,
            "walletcreatefundedpsbt": self._walletcreatefundedpsbt,
            "walletprocesspsbt": self._walletprocesspsbt,
            "finalizepsbt": self._finalizepsbt,
            "sendrawtransaction": self._sendrawtransaction,
            "gettransaction": self._gettransaction,
            "lockunspent": self._lockunspent,
            "listlockunspent": self._listlockunspent,
            "generatetoaddress": self._generatetoaddress,
        }
        self._wallet_methods = {
            "walletcreatefundedpsbt",
            "walletprocesspsbt",
            "gettransaction",
            "lockunspent",
            "listlockunspent",
        }
        self.wallet_locked = False

    # -- test helpers ------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def url(self, wallet: str | None = "payouts", *, password: str | None = None) -> str:
        base = URL(self.base_url).with_user(self.user).with_password(password or self.password)
        return str(base.with_path(f"/wallet/{wallet}" if wallet else "/"))

    def fund(self, sat: int, *, wallet: str = "payouts", count: int = 1) -> None:
        """Give the wallet `count` confirmed coins of `sat` each."""
        target = self.state.wallets[wallet]
        for _ in range(count):
            seed = f"coinbase {len(self.state.outputs)} {sat}".encode()
            txid = hashlib.sha256(seed).hexdigest()
            coin = Coin(txid, 0, sat, target.script)
            self.state.outputs[(txid, 0)] = coin
            target.coins[(txid, 0)] = coin
            self.state.confirmed[txid] = self.state.height

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.state.height += 1
            self.state.time += 600
            for txid in list(self.state.mempool):
                self.state.confirmed[txid] = self.state.height
            self.state.mempool.clear()

    def double_spend(self, txid: str) -> str:
        """Mine a different transaction spending the inputs of `txid` (which becomes conflicted)."""
        original = Transaction.from_string(self.state.mempool.pop(txid))
        rival = Transaction(
            vin=[TransactionInput(i.txid, i.vout) for i in original.vin],
            vout=[TransactionOutput(1_000, Script(bytes.fromhex("6a")))],
        )
        rival_txid: str = rival.txid().hex()
        for tx_input in original.vin:
            self.state.spent_by[(tx_input.txid.hex(), tx_input.vout)] = rival_txid
        for wallet in self.state.wallets.values():
            if txid in wallet.txs:
                wallet.txs[txid].conflicted_by = rival_txid
                wallet.coins = {k: c for k, c in wallet.coins.items() if k[0] != txid}
        self.state.outputs = {k: c for k, c in self.state.outputs.items() if k[0] != txid}
        self.state.mempool[rival_txid] = rival.serialize().hex()
        self.mine()
        return rival_txid

    def balance(self, wallet: str = "payouts") -> int:
        return sum(coin.value for coin in self.state.wallets[wallet].coins.values())

    # -- HTTP --------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._http)
        return app

    async def _http(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != self._authorization:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        if request.method != "POST":
            return web.Response(status=405, text="JSONRPC server handles only POST requests")
        try:
            body = json.loads(await request.read(), parse_float=Decimal)
        except ValueError:
            return self._legacy_error(None, RpcFailure(-32700, "Parse error"))
        if isinstance(body, dict) and body.get("jsonrpc") == "2.0" and not self.faults.legacy_rpc:
            return web.Response(
                text=_dumps(await self._reply_2(body, request.path)), content_type="application/json"
            )
        request_id = body.get("id") if isinstance(body, dict) else None
        try:
            result = await self._dispatch(body, request.path)
        except RpcFailure as failure:
            return self._legacy_error(request_id, failure)
        reply = {"result": result, "error": None, "id": request_id}
        return web.Response(text=_dumps(reply), content_type="application/json")

    async def _reply_2(self, body: Any, path: str) -> dict[str, Any]:
        request_id = body.get("id") if isinstance(body, dict) else None
        try:
            result = await self._dispatch(body, path)
        except RpcFailure as failure:
            error = {"code": failure.code, "message": failure.message}
            return {"jsonrpc": "2.0", "error": error, "id": request_id}
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _legacy_error(self, request_id: object, failure: RpcFailure) -> web.Response:
        status = {-32601: 404, -32600: 400}.get(failure.code, 500)
        reply = {
            "result": None,
            "error": {"code": failure.code, "message": failure.message},
            "id": request_id,
        }
        return web.Response(status=status, text=_dumps(reply), content_type="application/json")

    async def _dispatch(self, body: Any, path: str) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            raise RpcFailure(-32600, "Missing method")
        method = body["method"]
        params = body.get("params", [])
        if not isinstance(params, list):
            raise RpcFailure(-32600, "Params must be an array")
        handler = self._methods.get(method)
        if handler is None:
            raise RpcFailure(-32601, "Method not found")
        self.state.requests.append((method, params))
        wallet = self._wallet_for(path) if method in self._wallet_methods else None
        result = handler(wallet, params)
        if method == "sendrawtransaction" and self.faults.hang_after_broadcast:
            await self.hold()
        return result

    def _wallet_for(self, path: str) -> Wallet:
        if path.startswith("/wallet/"):
            wallet = self.state.wallets.get(path[len("/wallet/") :])
            if wallet is None:
                raise RpcFailure(-18, "Requested wallet does not exist or is not loaded")
            return wallet
        if len(self.state.wallets) != 1:
            raise RpcFailure(
                -19,
                "Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).",
            )
        return next(iter(self.state.wallets.values()))

    # -- RPC methods -------------------------------------------------------------------------------

    def _getblockchaininfo(self, _wallet: Wallet | None, _params: list[Any]) -> Any:
        return {
            "chain": self.state.chain,
            "blocks": self.state.height,
            "headers": self.state.height,
            "bestblockhash": hashlib.sha256(str(self.state.height).encode()).hexdigest(),
            "initialblockdownload": False,
            "verificationprogress": Decimal(1),
            "pruned": False,
            "warnings": [],
        }

    def _estimatesmartfee(self, _wallet: Wallet | None, params: list[Any]) -> Any:
        target = int(params[0])
        rate = self.faults.fee_estimate_btc_kvb
        if rate is None:
            return {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
        return {"feerate": rate, "blocks": target}

    def _walletcreatefundedpsbt(self, wallet: Wallet | None, params: list[Any]) -> Any:
        assert wallet is not None
        inputs, outputs = params[0], params[1]
        options = params[3] if len(params) > 3 else {}
        if inputs:
            raise RpcFailure(-8, "this fake funds from the wallet only")
        requested = self._parse_outputs(outputs)
        rate = self._fee_rate_sat_vb(options)
        available = sorted(
            (c for k, c in wallet.coins.items() if k not in wallet.locked and k not in self.state.spent_by),
            key=lambda coin: coin.value,
            reverse=True,
        )
        total = sum(value for _, value in requested)
        chosen: list[Coin] = []
        for coin in available:
            chosen.append(coin)
            fee = math.ceil(rate * (11 + 68 * len(chosen) + 31 * (len(requested) + 1)))
            if sum(c.value for c in chosen) >= total + fee:
                break
        else:
            raise RpcFailure(-6, "Insufficient funds")
        change = sum(c.value for c in chosen) - total - fee
        vout = [TransactionOutput(value, Script(script)) for script, value in requested]
        changepos = -1
        if change >= _CHANGE_DUST:
            changepos = len(vout)
            vout.append(TransactionOutput(change, Script(wallet.script)))
        else:
            fee += change
        sequence = _RBF_SEQUENCE if options.get("replaceable", True) else 0xFFFFFFFE
        vin = [TransactionInput(bytes.fromhex(c.txid), c.vout, sequence=sequence) for c in chosen]
        psbt = PSBT(Transaction(version=2, vin=vin, vout=vout, locktime=0))
        for psbt_input, coin in zip(psbt.inputs, chosen, strict=True):
            psbt_input.witness_utxo = TransactionOutput(coin.value, Script(coin.script))
        if options.get("lock_unspents"):
            wallet.locked.update((c.txid, c.vout) for c in chosen)
        return {"psbt": psbt.to_string(), "fee": _btc(fee), "changepos": changepos}

    def _parse_outputs(self, outputs: Any) -> list[tuple[bytes, int]]:
        pairs = [item for entry in outputs for item in entry.items()] if isinstance(outputs, list) else []
        if isinstance(outputs, dict):
            pairs = list(outputs.items())
        seen: set[str] = set()
        parsed = []
        network = NETWORKS[_EMBIT_NETWORK[self.state.chain]]
        for address, amount in pairs:
            if address in seen:
                raise RpcFailure(-8, f"Invalid parameter, duplicated address: {address}")
            seen.add(address)
            try:
                script = address_to_scriptpubkey(address)
                valid = script is not None and script.address(network) == address
            except Exception:
                valid = False
            if not valid:
                raise RpcFailure(-5, f"Invalid Bitcoin address: {address}")
            parsed.append((bytes(script.data), _amount_sat(amount)))
        if not parsed:
            raise RpcFailure(-8, "Invalid parameter, output argument must be non-empty")
        return parsed

    def _fee_rate_sat_vb(self, options: dict[str, Any]) -> Decimal:
        if "fee_rate" in options:
            if "conf_target" in options:
                raise RpcFailure(-8, "Cannot specify both conf_target and fee_rate.")
            return Decimal(options["fee_rate"])
        estimate = self.faults.fee_estimate_btc_kvb
        if estimate is None:
            raise RpcFailure(
                -4,
                "Fee estimation failed. Fallbackfee is disabled. Wait a few blocks or enable -fallbackfee.",
            )
        return estimate * SAT_PER_BTC / 1000

    def _walletprocesspsbt(self, wallet: Wallet | None, params: list[Any]) -> Any:
        assert wallet is not None
        if self.wallet_locked:
            raise RpcFailure(-13, "Error: Please enter the wallet passphrase with walletpassphrase first.")
        psbt = PSBT.from_string(params[0])
        signed = psbt.sign_with(wallet.key)
        return {"psbt": psbt.to_string(), "complete": signed == len(psbt.inputs)}

    def _finalizepsbt(self, _wallet: Wallet | None, params: list[Any]) -> Any:
        psbt = PSBT.from_string(params[0])
        tx = finalize_psbt(psbt)
        if tx is None:
            return {"psbt": psbt.to_string(), "complete": False}
        return {"hex": tx.serialize().hex(), "complete": True}

    def _sendrawtransaction(self, _wallet: Wallet | None, params: list[Any]) -> Any:
        try:
            tx = Transaction.from_string(params[0])
        except Exception:
            raise RpcFailure(-22, "TX decode failed. Make sure the tx has at least one input.") from None
        txid = tx.txid().hex()
        if txid in self.state.mempool:
            self.state.broadcasts.append(txid)
            return txid
        if txid in self.state.confirmed:
            raise RpcFailure(-27, "Transaction already in block chain")
        if self.faults.reject_broadcast is not None:
            raise RpcFailure(*self.faults.reject_broadcast)
        spent = [(i.txid.hex(), i.vout) for i in tx.vin]
        for outpoint in spent:
            if outpoint not in self.state.outputs:
                raise RpcFailure(-25, "bad-txns-inputs-missingorspent")
            spender = self.state.spent_by.get(outpoint)
            if spender is not None:
                if spender in self.state.mempool:
                    raise RpcFailure(-26, "txn-mempool-conflict")
                raise RpcFailure(-25, "bad-txns-inputs-missingorspent")
        self._verify_signatures(tx)
        self._accept(tx, txid, spent)
        return txid

    def _verify_signatures(self, tx: Transaction) -> None:
        for index, tx_input in enumerate(tx.vin):
            coin = self.state.outputs[(tx_input.txid.hex(), tx_input.vout)]
            items = tx_input.witness.items if tx_input.witness else []
            try:
                signature, pubkey = ec.Signature.parse(items[0][:-1]), ec.PublicKey.parse(items[1])
                script_code = Script(b"\x76\xa9\x14" + coin.script[2:] + b"\x88\xac")
                digest = tx.sighash_segwit(index, script_code, coin.value)
                valid = p2wpkh(pubkey).data == coin.script and pubkey.verify(signature, digest)
            except Exception:
                valid = False
            if not valid:
                raise RpcFailure(-26, "mandatory-script-verify-flag-failed (Signature must be zero)")

    def _accept(self, tx: Transaction, txid: str, spent: list[tuple[str, int]]) -> None:
        self.state.mempool[txid] = tx.serialize().hex()
        self.state.broadcasts.append(txid)
        for outpoint in spent:
            self.state.spent_by[outpoint] = txid
        for index, out in enumerate(tx.vout):
            self.state.outputs[(txid, index)] = Coin(txid, index, out.value, bytes(out.script_pubkey.data))
        for wallet in self.state.wallets.values():
            mine = [outpoint for outpoint in spent if outpoint in wallet.coins]
            if not mine:
                continue
            spent_value = sum(wallet.coins[outpoint].value for outpoint in mine)
            for outpoint in mine:
                del wallet.coins[outpoint]
                wallet.locked.discard(outpoint)
            sent = 0
            for index, out in enumerate(tx.vout):
                if bytes(out.script_pubkey.data) == wallet.script:
                    wallet.coins[(txid, index)] = self.state.outputs[(txid, index)]
                else:
                    sent += out.value
            fee = spent_value - sum(out.value for out in tx.vout)
            wallet.txs[txid] = WalletTx(txid, tx.serialize().hex(), fee, sent, self.state.time)

    def _gettransaction(self, wallet: Wallet | None, params: list[Any]) -> Any:
        assert wallet is not None
        record = wallet.txs.get(params[0])
        if record is None:
            raise RpcFailure(-5, "Invalid or non-wallet transaction id")
        reply: dict[str, Any] = {
            "amount": -_btc(record.sent),
            "fee": -_btc(record.fee),
            "confirmations": self._confirmations(record),
            "txid": record.txid,
            "walletconflicts": [record.conflicted_by] if record.conflicted_by else [],
            "time": record.time,
            "timereceived": record.time,
            "bip125-replaceable": "yes",
            "details": [],
            "hex": record.hex,
        }
        height = self.state.confirmed.get(record.txid)
        if height is not None:
            reply |= {"blockhash": hashlib.sha256(str(height).encode()).hexdigest(), "blockheight": height}
        else:
            reply["trusted"] = record.conflicted_by is None
        return reply

    def _confirmations(self, record: WalletTx) -> int:
        height = self.state.confirmed.get(record.txid)
        if height is not None:
            return self.state.height - height + 1
        if record.conflicted_by is not None:
            return -(self.state.height - self.state.confirmed[record.conflicted_by] + 1)
        return 0

    def _lockunspent(self, wallet: Wallet | None, params: list[Any]) -> Any:
        assert wallet is not None
        unlock = params[0]
        outpoints = params[1] if len(params) > 1 else None
        if outpoints is None:
            if unlock:
                wallet.locked.clear()
            return True
        keys = [(entry["txid"], entry["vout"]) for entry in outpoints]
        for key in keys:
            if key not in self.state.outputs:
                raise RpcFailure(-8, "Invalid parameter, unknown transaction")
            if key in self.state.spent_by:
                raise RpcFailure(-8, "Invalid parameter, expected unspent output")
            if unlock and key not in wallet.locked:
                raise RpcFailure(-8, "Invalid parameter, expected locked output")
        for key in keys:
            if unlock:
                wallet.locked.discard(key)
            else:
                wallet.locked.add(key)
        return True

    def _listlockunspent(self, wallet: Wallet | None, _params: list[Any]) -> Any:
        assert wallet is not None
        return [{"txid": txid, "vout": vout} for txid, vout in sorted(wallet.locked)]

    def _generatetoaddress(self, _wallet: Wallet | None, params: list[Any]) -> Any:
        blocks = int(params[0])
        self.mine(blocks)
        top = self.state.height
        return [
            hashlib.sha256(str(height).encode()).hexdigest() for height in range(top - blocks + 1, top + 1)
        ]
