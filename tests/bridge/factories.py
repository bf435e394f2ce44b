"""Real destinations made in the tests: addresses from fixed keys (embit), signed invoices (bolt11)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

import bolt11
from bolt11 import Bolt11, Feature, FeatureExtra, Features, FeatureState, MilliSatoshi, TagChar, Tags
from embit import ec, script
from embit.networks import NETWORKS

from spsp_pull.bridge.network import Network

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PAYEE_KEY = hashlib.sha256(b"spsp-pull test payee").hexdigest()
ADDRESS_KINDS = ("p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2wsh", "p2tr")

STANDARD_FEATURES: Mapping[Feature | FeatureExtra, FeatureState] = {
    Feature.var_onion_optin: FeatureState.required,
    Feature.payment_secret: FeatureState.required,
    Feature.basic_mpp: FeatureState.supported,
}


def key(seed: str) -> ec.PrivateKey:
    return ec.PrivateKey(hashlib.sha256(seed.encode()).digest())


def address(network: Network, kind: str, seed: str = "payout") -> str:
    pub = key(seed).get_public_key()
    scripts = {
        "p2pkh": lambda: script.p2pkh(pub),
        "p2sh-p2wpkh": lambda: script.p2sh(script.p2wpkh(pub)),
        "p2wpkh": lambda: script.p2wpkh(pub),
        "p2wsh": lambda: script.p2wsh(script.multisig(1, [pub])),
        "p2tr": lambda: script.p2tr(pub),
    }
    made: str = scripts[kind]().address(NETWORKS[network.value])
    return made


def payee_pubkey() -> str:
    pub: str = ec.PrivateKey(bytes.fromhex(PAYEE_KEY)).get_public_key().sec().hex()
    return pub


def preimage(seed: str) -> bytes:
    return hashlib.sha256(f"preimage {seed}".encode()).digest()


def invoice(
    network: Network,
    *,
    timestamp: int,
    amount_msat: int | None = None,
    expiry: int = 3600,
    payment_preimage: bytes | None = None,
    features: Mapping[Feature | FeatureExtra, FeatureState] = STANDARD_FEATURES,
) -> str:
    """A BOLT 11 invoice signed by PAYEE_KEY, paying sha256(payment_preimage)."""
    tags = Tags()
    tags.add(TagChar.payment_hash, hashlib.sha256(payment_preimage or preimage("default")).hexdigest())
    tags.add(TagChar.payment_secret, hashlib.sha256(b"secret" + (payment_preimage or b"")).hexdigest())
    tags.add(TagChar.description, "spsp-pull payout")
    tags.add(TagChar.expire_time, expiry)
    tags.add(TagChar.min_final_cltv_expiry, 80)
    tags.add(TagChar.features, Features.from_feature_list(dict(features)))
    amount = MilliSatoshi(amount_msat) if amount_msat is not None else None
    unsigned = Bolt11(currency=network.invoice_currency, date=timestamp, tags=tags, amount_msat=amount)
    encoded: str = bolt11.encode(unsigned, PAYEE_KEY)
    return encoded
