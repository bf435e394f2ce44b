from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import aiohttp
import pytest
from embit.script import address_to_scriptpubkey
from embit.transaction import Transaction

from spsp_pull.bridge.backends.bitcoind import (
    Bitcoind,
    BitcoindConfig,
    InsufficientFunds,
    InvalidAddress,
    InvalidParameter,
    WalletLocked,
)
from spsp_pull.bridge.backends.errors import BackendAuthError, BackendUnavailable
from spsp_pull.bridge.backends.jsonrpc import JsonRpcClient, RpcEndpoint, RpcError
from spsp_pull.bridge.backends.onchain import OnchainWallet, Outpoint, PayTo, SignedTransaction
from spsp_pull.bridge.backends.outcomes import Failed, Succeeded, Unknown
from spsp_pull.bridge.network import Network
from tests.bridge import factories
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind

FALLBACK = Decimal("2.5")
ALICE = factories.address(Network.REGTEST, "p2wpkh", "alice")
BOB = factories.address(Network.REGTEST, "p2tr", "bob")


def wallet(session: aiohttp.ClientSession, node: FakeBitcoind, url: str | None = None) -> Bitcoind:
    config = BitcoindConfig.from_url(url or node.url(), timeout=timedelta(seconds=2))
    return Bitcoind(session, config)


async def signed_batch(adapter: Bitcoind, *outputs: PayTo) -> SignedTransaction:
    chosen = outputs or (PayTo(ALICE, 40_000), PayTo(BOB, 25_000))
    return await adapter.create_transaction(chosen, conf_target=6, fallback_fee_rate=FALLBACK)


def last_options(node: FakeBitcoind) -> dict[str, object]:
    funded = [params for method, params in node.state.requests if method == "walletcreatefundedpsbt"]
    options: dict[str, object] = funded[-1][3]
    return options


async def test_the_network_comes_from_the_node(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    backend: OnchainWallet = wallet(session, bitcoind)
    assert await backend.network() is Network.REGTEST
    testnet4 = FakeBitcoind(chain="testnet4")
    await testnet4.start()
    try:
        assert await wallet(session, testnet4).network() is Network.TEST
    finally:
        await testnet4.stop()


async def test_bad_credentials_are_an_auth_error(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    assert ":" in bitcoind.password  # percent-encoded in the URL, sent decoded
    assert await wallet(session, bitcoind).network() is Network.REGTEST
    with pytest.raises(BackendAuthError):
        await wallet(session, bitcoind, bitcoind.url(password="wrong")).network()


async def test_wallet_calls_are_routed_by_path(session: aiohttp.ClientSession) -> None:
    node = FakeBitcoind(wallets=("payouts", "cold"))
    await node.start()
    try:
        node.fund(100_000)
        assert await wallet(session, node, node.url(None)).network() is Network.REGTEST
        with pytest.raises(RpcError) as unspecified:
            await signed_batch(wallet(session, node, node.url(None)))
        assert unspecified.value.code == -19
        with pytest.raises(RpcError) as missing:
            await signed_batch(wallet(session, node, node.url("missing")))
        assert missing.value.code == -18
        with pytest.raises(InsufficientFunds):
            await signed_batch(wallet(session, node, node.url("cold")))
        assert (await signed_batch(wallet(session, node))).txid
    finally:
        await node.stop()


async def test_a_batch_is_signed_and_nothing_is_broadcast(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(50_000, count=2)
    batch = await signed_batch(wallet(session, bitcoind))
    tx = Transaction.from_string(batch.hex)
    assert tx.txid().hex() == batch.txid
    paid = {(bytes(out.script_pubkey.data), out.value) for out in tx.vout}
    assert (address_to_scriptpubkey(ALICE).data, 40_000) in paid
    assert (address_to_scriptpubkey(BOB).data, 25_000) in paid
    assert sum(out.value for out in tx.vout) + batch.fee_sat == 100_000
    assert set(batch.inputs) == {Outpoint(i.txid.hex(), i.vout) for i in tx.vin}
    assert bitcoind.state.wallets["payouts"].locked == {(o.txid, o.vout) for o in batch.inputs}
    assert bitcoind.state.broadcasts == []
    assert bitcoind.state.mempool == {}


async def test_the_fee_follows_the_estimate_or_else_the_fallback_rate(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000, count=2)
    adapter = wallet(session, bitcoind)
    no_history = await signed_batch(adapter)
    assert last_options(bitcoind) == {"replaceable": True, "lock_unspents": True, "fee_rate": "2.5"}
    bitcoind.faults.fee_estimate_btc_kvb = Decimal("0.0002")  # 20 sat/vB
    estimated = await signed_batch(adapter)
    assert last_options(bitcoind) == {
        "replaceable": True,
        "lock_unspents": True,
        "conf_target": 6,
        "estimate_mode": "economical",
    }
    assert estimated.fee_sat > 5 * no_history.fee_sat


async def test_a_broadcast_is_idempotent(session: aiohttp.ClientSession, bitcoind: FakeBitcoind) -> None:
    bitcoind.fund(100_000)
    adapter = wallet(session, bitcoind)
    batch = await signed_batch(adapter)
    assert await adapter.broadcast(batch.hex) == Succeeded(batch.txid)
    assert await adapter.broadcast(batch.hex) == Succeeded(batch.txid)
    assert list(bitcoind.state.mempool) == [batch.txid]
    assert bitcoind.balance() == 100_000 - 65_000 - batch.fee_sat
    status = await adapter.transaction_status(batch.txid)
    assert status is not None and status.confirmations == 0
    bitcoind.mine()
    assert await adapter.broadcast(batch.hex) == Succeeded(batch.txid)  # -27: already in a block
    bitcoind.mine(2)
    status = await adapter.transaction_status(batch.txid)
    assert status is not None and (status.confirmations, status.conflicted) == (3, False)
    assert bitcoind.state.broadcasts == [batch.txid, batch.txid]


async def test_a_mempool_rejection_is_a_failure_and_the_inputs_can_be_freed(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000)
    adapter = wallet(session, bitcoind)
    batch = await signed_batch(adapter)
    bitcoind.faults.reject_broadcast = (-26, "min relay fee not met")
    assert await adapter.broadcast(batch.hex) == Failed("rpc-26", "min relay fee not met")
    assert bitcoind.state.mempool == {}
    with pytest.raises(InsufficientFunds):
        await signed_batch(adapter)  # the only coin is still locked
    await adapter.release_inputs(batch.inputs)
    await adapter.release_inputs(batch.inputs)  # already free: nothing to do
    bitcoind.faults.reject_broadcast = None
    retry = await signed_batch(adapter)
    assert retry.inputs == batch.inputs
    assert await adapter.broadcast(retry.hex) == Succeeded(retry.txid)


async def test_a_tampered_transaction_fails_signature_checks(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000)
    adapter = wallet(session, bitcoind)
    batch = await signed_batch(adapter)
    tx = Transaction.from_string(batch.hex)
    tx.vout[0].value -= 1
    outcome = await adapter.broadcast(tx.serialize().hex())
    assert isinstance(outcome, Failed) and outcome.reason == "rpc-26"
    assert bitcoind.state.mempool == {}


async def test_a_time_out_after_the_broadcast_is_unknown_until_reconciled(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000)
    adapter = Bitcoind(session, BitcoindConfig.from_url(bitcoind.url(), timeout=timedelta(seconds=0.3)))
    batch = await signed_batch(adapter)
    bitcoind.faults.hang_after_broadcast = True
    outcome = await adapter.broadcast(batch.hex)
    assert isinstance(outcome, Unknown)
    assert list(bitcoind.state.mempool) == [batch.txid]  # it did go out
    bitcoind.faults.hang_after_broadcast = False
    status = await adapter.transaction_status(batch.txid)
    assert status is not None and status.confirmations == 0
    assert await adapter.broadcast(batch.hex) == Succeeded(batch.txid)
    assert list(bitcoind.state.mempool) == [batch.txid]


async def test_a_stored_transaction_survives_a_node_restart(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000)
    stored = await signed_batch(wallet(session, bitcoind))
    await bitcoind.restart()
    async with aiohttp.ClientSession() as fresh:
        adapter = wallet(fresh, bitcoind)
        assert await adapter.broadcast(stored.hex) == Succeeded(stored.txid)
    assert bitcoind.state.broadcasts == [stored.txid]


async def test_a_double_spent_transaction_is_conflicted_and_failed(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000)
    adapter = wallet(session, bitcoind)
    batch = await signed_batch(adapter)
    assert await adapter.broadcast(batch.hex) == Succeeded(batch.txid)
    rival = bitcoind.double_spend(batch.txid)
    status = await adapter.transaction_status(batch.txid)
    assert status is not None
    assert (status.confirmations, status.conflicted, status.wallet_conflicts) == (-1, True, (rival,))
    outcome = await adapter.broadcast(batch.hex)
    assert outcome == Failed("rpc-25", "bad-txns-inputs-missingorspent")


async def test_a_transaction_the_wallet_never_saw_has_no_status(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    assert await wallet(session, bitcoind).transaction_status("ab" * 32) is None


async def test_wallet_refusals_are_typed_and_release_what_they_locked(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind
) -> None:
    adapter = wallet(session, bitcoind)
    with pytest.raises(InsufficientFunds):
        await signed_batch(adapter)
    bitcoind.fund(100_000)
    with pytest.raises(InvalidParameter, match="duplicated address"):
        await signed_batch(adapter, PayTo(ALICE, 1_000), PayTo(ALICE, 2_000))
    with pytest.raises(InvalidAddress):
        await signed_batch(adapter, PayTo(factories.address(Network.MAIN, "p2wpkh"), 1_000))
    bitcoind.wallet_locked = True
    with pytest.raises(WalletLocked):
        await signed_batch(adapter)
    assert bitcoind.state.wallets["payouts"].locked == set()
    bitcoind.wallet_locked = False
    assert (await signed_batch(adapter)).fee_sat > 0


@pytest.mark.parametrize("legacy", [False, True])
async def test_both_reply_dialects_are_understood(
    session: aiohttp.ClientSession, bitcoind: FakeBitcoind, legacy: bool
) -> None:
    bitcoind.faults.legacy_rpc = legacy
    client = JsonRpcClient(session, RpcEndpoint.from_url(bitcoind.url()), timeout=timedelta(seconds=2))
    info = await client.call("getblockchaininfo")
    assert info["chain"] == "regtest"
    assert info["verificationprogress"] == Decimal(1)
    with pytest.raises(RpcError) as unknown:
        await client.call("nosuchmethod")
    assert unknown.value.code == -32601
    with pytest.raises(InvalidAddress):
        await signed_batch(wallet(session, bitcoind), PayTo(factories.address(Network.TEST, "p2tr"), 1_000))


async def test_an_unreachable_node(session: aiohttp.ClientSession, bitcoind: FakeBitcoind) -> None:
    bitcoind.fund(100_000)
    adapter = wallet(session, bitcoind)
    batch = await signed_batch(adapter)
    await bitcoind.stop()
    with pytest.raises(BackendUnavailable):
        await adapter.network()
    assert isinstance(await adapter.broadcast(batch.hex), Unknown)


def test_the_url_carries_the_credentials_but_repr_does_not() -> None:
    config = BitcoindConfig.from_url("http://user:p%40ss%3Aword@127.0.0.1:18443/wallet/payouts")
    assert config.endpoint.url == "http://127.0.0.1:18443/wallet/payouts"
    assert config.endpoint.authorization == "Basic dXNlcjpwQHNzOndvcmQ="  # user:p@ss:word
    assert "dXNlcj" not in repr(config)
    for bad in ("127.0.0.1:8332", "http://127.0.0.1:8332/", "ftp://u:p@127.0.0.1/"):
        with pytest.raises(ValueError, match="bitcoind URL"):
            BitcoindConfig.from_url(bad)
