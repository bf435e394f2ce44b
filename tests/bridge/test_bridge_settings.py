"""`bridge_settings_from_env`: off without a backend, every knob read and checked."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from spsp_pull.bridge import bridge_settings_from_env
from spsp_pull.bridge.quote import FeePolicy
from spsp_pull.bridge.settings import BridgeSettings
from spsp_pull.config_error import ConfigError

BITCOIND = "http://payouts:secret@127.0.0.1:18443/wallet/payouts"


def test_no_backend_means_no_bridge() -> None:
    assert bridge_settings_from_env({}) is None
    assert bridge_settings_from_env({"SPSP_RATES": '{"BTC/USD": "50000"}'}) is None
    with pytest.raises(ValueError, match="backend"):
        BridgeSettings()


async def test_everything_is_read() -> None:
    settings = bridge_settings_from_env(
        {
            "SPSP_BITCOIND_URL": BITCOIND,
            "SPSP_RATES": '{"BTC/USD": "50000"}',
            "SPSP_BRIDGE_BATCH_INTERVAL": "2.5",
            "SPSP_BRIDGE_RECONCILE_INTERVAL": "10",
            "SPSP_BRIDGE_OFFER_TTL": "60",
            "SPSP_BRIDGE_ONCHAIN_FEE_SAT": "1000",
            "SPSP_BRIDGE_LN_FEE_PPM": "0",
            "SPSP_BRIDGE_FALLBACK_FEE_RATE": "1.5",
            "SPSP_BRIDGE_CONFIRMATIONS": "3",
        }
    )
    assert settings is not None and settings.lnd is None and settings.bitcoind is not None
    assert "secret" not in repr(settings.bitcoind)
    assert settings.batch_interval == timedelta(seconds=2.5)
    assert settings.offer_ttl == timedelta(seconds=60)
    assert settings.onchain_fees == FeePolicy(fixed_msat=1_000_000)
    assert settings.lightning_fees == FeePolicy(fixed_msat=1_000, ppm=0)
    assert settings.fallback_fee_rate == Decimal("1.5") and settings.confirmations == 3
    assert await settings.rates.rate("BTC", "USD") == Decimal(50000)
    defaults = bridge_settings_from_env({"SPSP_BITCOIND_URL": BITCOIND})
    assert defaults is not None and defaults.batch_interval == timedelta(seconds=60)


def test_lnd(tmp_path: Path) -> None:
    cert = tmp_path / "tls.cert"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    settings = bridge_settings_from_env(
        {
            "SPSP_LND_URL": "https://127.0.0.1:8080",
            "SPSP_LND_MACAROON": "0201036c6e64",
            "SPSP_LND_TLS_CERT": str(cert),
        }
    )
    assert settings is not None and settings.lnd is not None and settings.bitcoind is None
    assert settings.lnd.tls_cert_pem == cert.read_bytes()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPSP_LND_URL": "https://127.0.0.1:8080"}, "SPSP_LND_MACAROON"),
        ({"SPSP_LND_URL": "https://x", "SPSP_LND_MACAROON": "zz"}, "hex"),
        (
            {"SPSP_LND_URL": "https://x", "SPSP_LND_MACAROON": "02", "SPSP_LND_TLS_CERT": "/nonexistent"},
            "cannot read",
        ),
        ({"SPSP_BITCOIND_URL": "http://127.0.0.1:8332"}, "user:password"),
        ({"SPSP_BITCOIND_URL": BITCOIND, "SPSP_BRIDGE_BATCH_INTERVAL": "0"}, "positive"),
        ({"SPSP_BITCOIND_URL": BITCOIND, "SPSP_BRIDGE_BATCH_INTERVAL": "soon"}, "number"),
        ({"SPSP_BITCOIND_URL": BITCOIND, "SPSP_BRIDGE_CONFIRMATIONS": "-1"}, "integer"),
        ({"SPSP_BITCOIND_URL": BITCOIND, "SPSP_BRIDGE_CONFIRMATIONS": "0"}, "start at 1"),
        (
            {"SPSP_BITCOIND_URL": BITCOIND, "SPSP_BRIDGE_LN_FEE_MSAT": "0", "SPSP_BRIDGE_LN_FEE_PPM": "0"},
            "zero",
        ),
        ({"SPSP_BITCOIND_URL": BITCOIND, "SPSP_RATES": "[]"}, "SPSP_RATES"),
    ],
)
def test_bad_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bridge_settings_from_env(env)
