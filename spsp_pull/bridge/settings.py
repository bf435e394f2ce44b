"""The bridge's configuration, from `SPSP_*` environment variables. No backend configured: no bridge.

| variable | meaning | default |
|---|---|---|
| `SPSP_BITCOIND_URL` | Bitcoin Core JSON-RPC, `http://user:password@host:port[/wallet/<name>]` | off |
| `SPSP_LND_URL` | LND REST, `https://host:8080` | off |
| `SPSP_LND_MACAROON` | the admin (or pay-only) macaroon, hex | required with LND |
| `SPSP_LND_TLS_CERT` | path of LND's `tls.cert` (PEM) to pin | system trust |
| `SPSP_BRIDGE_BATCH_INTERVAL` | seconds between on-chain batches | 60 |
| `SPSP_BRIDGE_RECONCILE_INTERVAL` | seconds between reconciler runs | 30 |
| `SPSP_BRIDGE_OFFER_TTL` | seconds an offer (`NEW`) can be approved | 900 |
| `SPSP_BRIDGE_ONCHAIN_FEE_SAT`, `_PPM` | charged on top of an on-chain transfer | 500, 0 |
| `SPSP_BRIDGE_LN_FEE_MSAT`, `_PPM` | charged on a Lightning transfer; the routing fee limit | 1000, 5000 |
| `SPSP_BRIDGE_CONF_TARGET` | blocks, for the wallet's fee estimate | 6 |
| `SPSP_BRIDGE_FALLBACK_FEE_RATE` | sat/vB when the node has no estimate (regtest) | 2 |
| `SPSP_BRIDGE_CONFIRMATIONS` | confirmations that make an on-chain payout `CONFIRMED` | 1 |
| `SPSP_RATES` | static rates, e.g. `{"BTC/USD": "50000"}` | none |

The network is never configured: it is learnt from the backend (and both backends must agree).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from spsp_pull.bridge.backends.bitcoind import BitcoindConfig
from spsp_pull.bridge.backends.lnd import LndConfig
from spsp_pull.bridge.invoice import InvoicePolicy
from spsp_pull.bridge.quote import FeePolicy
from spsp_pull.config_error import ConfigError
from spsp_pull.rates import RateSource, StaticRates, parse_rates

ONCHAIN_FEES = FeePolicy(fixed_msat=500_000)
LIGHTNING_FEES = FeePolicy(fixed_msat=1_000, ppm=5_000)
INVOICE_POLICY = InvoicePolicy()
PAYOUT_LEASE = timedelta(days=3650)
"""Lease of a payout's reservation. `recover_expired` never touches payout reservations; the reconciler
closes them, so the lease only has to outlive any payout."""


@dataclass(frozen=True)
class BridgeSettings:
    bitcoind: BitcoindConfig | None = None
    lnd: LndConfig | None = None
    rates: RateSource = field(default_factory=lambda: StaticRates({}))
    batch_interval: timedelta = timedelta(seconds=60)
    reconcile_interval: timedelta = timedelta(seconds=30)
    expiry_interval: timedelta = timedelta(seconds=5)
    offer_ttl: timedelta = timedelta(minutes=15)
    onchain_fees: FeePolicy = ONCHAIN_FEES
    lightning_fees: FeePolicy = LIGHTNING_FEES
    conf_target: int = 6
    fallback_fee_rate: Decimal = Decimal(2)
    confirmations: int = 1
    invoice_policy: InvoicePolicy = INVOICE_POLICY
    pay_time_limit: timedelta = timedelta(seconds=60)
    max_attempts: int = 3
    orphan_grace: timedelta = timedelta(minutes=5)
    max_batch: int = 200
    background: bool = True  # run the batcher, the Lightning dispatcher, the reconciler and expiry

    def __post_init__(self) -> None:
        if self.bitcoind is None and self.lnd is None:
            raise ValueError("the bridge needs a backend: SPSP_BITCOIND_URL or SPSP_LND_URL")
        if self.lightning_fees.fixed_msat == 0 and self.lightning_fees.ppm == 0:
            raise ValueError("the Lightning fee is the routing fee limit and must not be zero")
        if self.max_attempts < 1 or self.confirmations < 1 or self.conf_target < 1:
            raise ValueError("attempts, confirmations and the confirmation target start at 1")
        if not self.fallback_fee_rate.is_finite() or self.fallback_fee_rate <= 0:
            raise ValueError("the fallback fee rate must be a positive number of sat/vB")

    @property
    def backend_timeout(self) -> timedelta:
        timeouts = [c.timeout for c in (self.bitcoind, self.lnd) if c is not None]
        return max(timeouts)

    @property
    def pay_claim(self) -> timedelta:
        """How long one dispatcher owns an in-flight Lightning payment before a reconciler may ask."""
        return self.pay_time_limit + self.backend_timeout * 2 + timedelta(seconds=30)

    @property
    def batch_claim(self) -> timedelta:
        """How long one batcher owns a batch it is building before a reconciler may abandon it."""
        return self.backend_timeout * 6 + timedelta(seconds=30)


def bridge_settings_from_env(env: Mapping[str, str] | None = None) -> BridgeSettings | None:
    """The bridge's settings, or None when no backend is configured (the bridge is off)."""
    env = os.environ if env is None else env

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    bitcoind_url, lnd_url = text("SPSP_BITCOIND_URL"), text("SPSP_LND_URL")
    if bitcoind_url is None and lnd_url is None:
        return None
    bitcoind = None
    if bitcoind_url is not None:
        try:
            bitcoind = BitcoindConfig.from_url(bitcoind_url)
        except ValueError as exc:
            raise ConfigError(f"SPSP_BITCOIND_URL: {exc}") from None
    lnd = None if lnd_url is None else _lnd(lnd_url, text("SPSP_LND_MACAROON"), text("SPSP_LND_TLS_CERT"))
    rates = parse_rates(raw) if (raw := text("SPSP_RATES")) is not None else {}
    try:
        return BridgeSettings(
            bitcoind=bitcoind,
            lnd=lnd,
            rates=StaticRates(rates),
            batch_interval=_seconds(env, "SPSP_BRIDGE_BATCH_INTERVAL", 60),
            reconcile_interval=_seconds(env, "SPSP_BRIDGE_RECONCILE_INTERVAL", 30),
            offer_ttl=_seconds(env, "SPSP_BRIDGE_OFFER_TTL", 900),
            onchain_fees=FeePolicy(
                fixed_msat=_integer(env, "SPSP_BRIDGE_ONCHAIN_FEE_SAT", 500) * 1_000,
                ppm=_integer(env, "SPSP_BRIDGE_ONCHAIN_FEE_PPM", 0),
            ),
            lightning_fees=FeePolicy(
                fixed_msat=_integer(env, "SPSP_BRIDGE_LN_FEE_MSAT", 1_000),
                ppm=_integer(env, "SPSP_BRIDGE_LN_FEE_PPM", 5_000),
            ),
            conf_target=_integer(env, "SPSP_BRIDGE_CONF_TARGET", 6),
            fallback_fee_rate=_decimal(env, "SPSP_BRIDGE_FALLBACK_FEE_RATE", Decimal(2)),
            confirmations=_integer(env, "SPSP_BRIDGE_CONFIRMATIONS", 1),
        )
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"payout bridge: {exc}") from None


def _lnd(url: str, macaroon: str | None, cert_path: str | None) -> LndConfig:
    if macaroon is None:
        raise ConfigError("SPSP_LND_URL needs SPSP_LND_MACAROON (the macaroon as hex)")
    cert = None
    if cert_path is not None:
        try:
            cert = Path(cert_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"SPSP_LND_TLS_CERT: cannot read {cert_path}: {exc.strerror}") from None
    try:
        return LndConfig(url, macaroon, cert)
    except ValueError as exc:
        raise ConfigError(f"SPSP_LND_MACAROON: {exc}") from None


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def _seconds(env: Mapping[str, str], name: str, default: int) -> timedelta:
    seconds = _decimal(env, name, Decimal(default))
    if seconds <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds")
    return timedelta(microseconds=int(seconds * 1_000_000))


def _decimal(env: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{name} must be a non-negative number, not {value!r}")
    return number
