"""The Bitcoin network a destination or a backend belongs to, and the names each protocol uses for it."""

from __future__ import annotations

from enum import StrEnum

from embit.networks import NETWORKS


class Network(StrEnum):
    MAIN = "main"
    TEST = "test"
    REGTEST = "regtest"
    SIGNET = "signet"

    @property
    def bech32_hrp(self) -> str:
        """Human-readable part of this network's segwit addresses (testnet and signet share `tb`)."""
        hrp: str = NETWORKS[self.value]["bech32"]
        return hrp

    @property
    def base58_prefixes(self) -> tuple[bytes, bytes]:
        """Version bytes of P2PKH and P2SH addresses (shared by testnet, signet and regtest)."""
        params = NETWORKS[self.value]
        return params["p2pkh"], params["p2sh"]

    @property
    def invoice_currency(self) -> str:
        """BOLT 11 currency prefix (after `ln`)."""
        return _INVOICE_CURRENCY[self]


_INVOICE_CURRENCY = {
    Network.MAIN: "bc",
    Network.TEST: "tb",
    Network.SIGNET: "tbs",
    Network.REGTEST: "bcrt",
}

# `chain` of Bitcoin Core's getblockchaininfo (testnet4 arrived with Core 28).
_BITCOIND_CHAINS = {
    "main": Network.MAIN,
    "test": Network.TEST,
    "testnet4": Network.TEST,
    "signet": Network.SIGNET,
    "regtest": Network.REGTEST,
}

# `chains[].network` of LND's getinfo.
_LND_NETWORKS = {
    "mainnet": Network.MAIN,
    "testnet": Network.TEST,
    "testnet3": Network.TEST,
    "testnet4": Network.TEST,
    "signet": Network.SIGNET,
    "regtest": Network.REGTEST,
}


def network_of_invoice_currency(currency: str) -> Network | None:
    for network, prefix in _INVOICE_CURRENCY.items():
        if prefix == currency:
            return network
    return None


def network_from_bitcoind_chain(chain: str) -> Network:
    try:
        return _BITCOIND_CHAINS[chain]
    except KeyError:
        raise ValueError(f"bitcoind reports an unsupported chain {chain!r}") from None


def network_from_lnd(network: str) -> Network:
    try:
        return _LND_NETWORKS[network]
    except KeyError:
        raise ValueError(f"LND reports an unsupported network {network!r}") from None
