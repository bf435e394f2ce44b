"""Server configuration from flags and `SPSP_*` environment variables (names other tools rely on)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path

from spsp_pull.bridge.settings import BridgeSettings, bridge_settings_from_env
from spsp_pull.config_error import ConfigError
from spsp_pull.domain.outbound_targets import IPNetwork, TargetPolicy, parse_networks
from spsp_pull.ilp.connection_budget import ConnectionLimits
from spsp_pull.logging_setup import LOG_FORMATS
from spsp_pull.offline import hs256_secret_problem
from spsp_pull.rates import parse_rates
from spsp_pull.store.sqlite_connections import SQLITE_DRIVERS, SqliteDriver

DEFAULT_PORT = 6000
DEFAULT_BTP_PORT = 7768
DEFAULT_DATA_DIR = "spsp-data"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, slots=True)
class Config:
    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    host: str | None = None
    auth_token: str | None = None
    jwt_secret: str | None = None
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    btp_port: int | None = DEFAULT_BTP_PORT
    btp_bind: str = "127.0.0.1"
    ilp_address: str = "private.spsppull"
    ilp_uplink: str | None = None
    asset_code: str = "XRP"
    asset_scale: int = 9
    rates: Mapping[str, Decimal] = field(default_factory=dict)
    # Networks webhooks and payout notifications may reach besides public addresses (local receivers).
    webhook_allow_nets: tuple[IPNetwork, ...] = ()
    log_level: str = "INFO"
    log_format: str = "text"  # SPSP_LOG_FORMAT: text, or json (one object per line)
    reservation_lease: timedelta = timedelta(seconds=60)
    sender_wait: timedelta = timedelta(seconds=55)  # a pull waits this long for another stream's sending
    idempotency_claim_ttl: timedelta = timedelta(seconds=60)  # longer than any request takes
    idempotency_retention: timedelta = timedelta(hours=24)
    btp_max_accounts: int = 10_000  # embedded BTP account names bound to a token (kept in the database)
    database_pool_size: int = 10  # PostgreSQL connections a process keeps (as many again on demand)
    sqlite_driver: SqliteDriver = "inline"  # SPSP_SQLITE_DRIVER: inline (in the event loop), or aiosqlite
    max_packet_amount: int | None = None
    max_in_flight: int = 4
    packet_timeout: timedelta = timedelta(seconds=30)  # how long each Prepare the STREAM server sends lives
    http_header_timeout: timedelta = timedelta(seconds=30)  # a request head's bytes, first to last
    http_keepalive_timeout: timedelta = timedelta(seconds=75)  # an idle keep-alive connection
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    audit_interval: timedelta | None = timedelta(hours=1)  # None: no periodic ledger audit
    bridge: BridgeSettings | None = None  # the payout bridge (bridge/settings.py); None: off

    @property
    def public_host(self) -> str:
        return self.host or f"localhost:{self.port}"

    @property
    def public_scheme(self) -> str:
        """Pointers resolve over https (RFC 0026); plain http only for a local server without TLS."""
        if self.tls_cert is not None:
            return "https"
        hostname = self.public_host.rsplit(":", 1)[0] if "]" not in self.public_host else self.public_host
        return "http" if hostname in LOCAL_HOSTS or self.host is None else "https"

    @property
    def outbound_targets(self) -> TargetPolicy:
        """Where webhooks and payout notifications may be sent."""
        return TargetPolicy(self.webhook_allow_nets)

    def pointer(self, path: str) -> str:
        return f"${self.public_host}/{path}"

    def url(self, path: str) -> str:
        return f"{self.public_scheme}://{self.public_host}/{path}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'spsp-pull.sqlite3').resolve()}"


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


def _same(value: int) -> int:
    return value


# (variable, Config field, lowest, highest, conversion) of the settings that are one integer.
_INTEGERS: tuple[tuple[str, str, int, int, Callable[[int], object]], ...] = (
    ("SPSP_PORT", "port", 0, 65535, _same),
    ("SPSP_RESERVATION_LEASE", "reservation_lease", 5, 3600, _seconds),
    ("SPSP_SENDER_WAIT", "sender_wait", 1, 3600, _seconds),
    ("SPSP_IDEMPOTENCY_CLAIM_TTL", "idempotency_claim_ttl", 1, 86_400, _seconds),
    ("SPSP_IDEMPOTENCY_RETENTION", "idempotency_retention", 60, 31_536_000, _seconds),
    ("SPSP_BTP_MAX_ACCOUNTS", "btp_max_accounts", 1, 10_000_000, _same),
    ("SPSP_DATABASE_POOL_SIZE", "database_pool_size", 1, 500, _same),
    ("SPSP_MAX_PACKET_AMOUNT", "max_packet_amount", 1, 2**64 - 1, _same),
    ("SPSP_MAX_IN_FLIGHT", "max_in_flight", 1, 1000, _same),
    ("SPSP_ASSET_SCALE", "asset_scale", 0, 255, _same),
)
# (variable, Config field, shortest, longest) of the settings that are a duration with a unit.
_DURATIONS: tuple[tuple[str, str, timedelta, timedelta], ...] = (
    ("SPSP_HTTP_HEADER_TIMEOUT", "http_header_timeout", timedelta(milliseconds=1), timedelta(hours=1)),
    ("SPSP_HTTP_KEEPALIVE_TIMEOUT", "http_keepalive_timeout", timedelta(milliseconds=1), timedelta(hours=1)),
    ("SPSP_PACKET_TIMEOUT", "packet_timeout", timedelta(seconds=1), timedelta(minutes=2)),
)
# (variable, Config field) of the settings taken as they are written.
_TEXTS: tuple[tuple[str, str], ...] = (
    ("SPSP_BIND", "bind"),
    ("SPSP_HOST", "host"),
    ("SPSP_AUTH_TOKEN", "auth_token"),
    ("SPSP_JWT_SECRET", "jwt_secret"),
    ("SPSP_DATABASE_URL", "database_url"),
    ("SPSP_SQLITE_DRIVER", "sqlite_driver"),
    ("SPSP_BTP_BIND", "btp_bind"),
    ("SPSP_ILP_ADDRESS", "ilp_address"),
    ("SPSP_ILP_UPLINK", "ilp_uplink"),
    ("SPSP_ASSET_CODE", "asset_code"),
    ("SPSP_LOG_LEVEL", "log_level"),
    ("SPSP_LOG_FORMAT", "log_format"),
)
_PATHS: tuple[tuple[str, str], ...] = (
    ("SPSP_DATA_DIR", "data_dir"),
    ("SPSP_TLS_CERT", "tls_cert"),
    ("SPSP_TLS_KEY", "tls_key"),
)


class Unset(Enum):
    """A variable that is not set (where None means "off")."""

    UNSET = "unset"


UNSET = Unset.UNSET


class _Environment:
    """The `SPSP_*` variables one at a time: blank is unset; a bad value is a `ConfigError` naming it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def number(self, name: str, low: int, high: int) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.isdigit() or not low <= int(value) <= high:
            raise ConfigError(f"{name} must be an integer from {low} to {high}, not {value!r}")
        return int(value)

    def number_or_off(self, name: str, low: int, high: int, *, off: tuple[str, ...]) -> int | Unset | None:
        """An integer, or None for one of the words `off`; `UNSET` when the variable is not set."""
        value = self.text(name)
        if value is None:
            return UNSET
        return None if value.lower() in off else self.number(name, low, high)


def from_environment(env: Mapping[str, str] | None = None, **overrides: object) -> Config:
    """Read `SPSP_*` variables; keyword overrides (from command-line flags) win when not None."""
    source = _Environment(os.environ if env is None else env)
    values: dict[str, object] = {}
    for name, key, low, high, convert in _INTEGERS:
        if (number := source.number(name, low, high)) is not None:
            values[key] = convert(number)
    for name, key, shortest, longest in _DURATIONS:
        if (value := source.text(name)) is not None:
            values[key] = duration(name, value, low=shortest, high=longest)
    for name, key in _TEXTS:
        if (value := source.text(name)) is not None:
            values[key] = value
    for name, key in _PATHS:
        if (value := source.text(name)) is not None:
            values[key] = Path(value)
    if (btp := source.number_or_off("SPSP_BTP_PORT", 1, 65535, off=("off", "none", "0"))) is not UNSET:
        values["btp_port"] = btp
    if (audit := source.number_or_off("SPSP_AUDIT_INTERVAL", 1, 604_800, off=("off",))) is not UNSET:
        values["audit_interval"] = None if audit is None else timedelta(seconds=audit)
    values["connection_limits"] = _connection_limits(source.number)
    values.update(_policies(source))
    values["bridge"] = bridge_settings_from_env(source.env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = Config(**values)  # type: ignore[arg-type]
    _check(config)
    return config


def _policies(source: _Environment) -> dict[str, object]:
    """The webhook networks and the exchange rates (and the refusal of a variable that is gone)."""
    values: dict[str, object] = {}
    if source.text("SPSP_WEBHOOK_SECRET") is not None:
        raise ConfigError(
            "SPSP_WEBHOOK_SECRET is gone: each account signs its webhooks with its own secret "
            "(GET /me/webhook-secret, `spsp-pull webhook-secret`); unset it"
        )
    if (allow_nets := source.text("SPSP_WEBHOOK_ALLOW_NETS")) is not None:
        try:
            values["webhook_allow_nets"] = parse_networks(allow_nets.split(","))
        except ValueError as exc:
            raise ConfigError(f"SPSP_WEBHOOK_ALLOW_NETS: {exc}") from None
    if (rates := source.text("SPSP_RATES")) is not None:
        values["rates"] = parse_rates(rates)
    return values


def _connection_limits(number: Callable[[str, int, int], int | None]) -> ConnectionLimits:
    """SPSP_MAX_PULL_CONNECTIONS, SPSP_MAX_PUSH_CONNECTIONS, SPSP_MAX_CONNECTIONS_PER_ACCOUNT (pushes),
    SPSP_MAX_CONNECTIONS_PER_POINTER (pulls), SPSP_STREAM_IDLE_TIMEOUT and SPSP_STREAM_EVICT_IDLE_AFTER
    (seconds)."""
    default = ConnectionLimits()

    def seconds(name: str, fallback: timedelta) -> timedelta:
        value = number(name, 1, 86_400)
        return fallback if value is None else timedelta(seconds=value)

    return ConnectionLimits(
        pull=number("SPSP_MAX_PULL_CONNECTIONS", 1, 1_000_000) or default.pull,
        push=number("SPSP_MAX_PUSH_CONNECTIONS", 1, 1_000_000) or default.push,
        per_account=number("SPSP_MAX_CONNECTIONS_PER_ACCOUNT", 1, 1_000_000) or default.per_account,
        idle_timeout=seconds("SPSP_STREAM_IDLE_TIMEOUT", default.idle_timeout),
        evict_idle_after=seconds("SPSP_STREAM_EVICT_IDLE_AFTER", default.evict_idle_after),
        per_pointer=number("SPSP_MAX_CONNECTIONS_PER_POINTER", 1, 1_000_000) or default.per_pointer,
    )


DURATION = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)(ms|s|m|h)?")
DURATION_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}


def duration(name: str, text: str, *, low: timedelta, high: timedelta) -> timedelta:
    """A duration such as `30`, `30s`, `0.2s`, `500ms` or `2m` (no unit: seconds), from `low` to `high`."""
    match = DURATION.fullmatch(text.strip())
    if match is not None:
        unit = DURATION_UNITS[match[2] or "s"]
        value = timedelta(microseconds=int(Decimal(match[1]) * (unit // timedelta(microseconds=1))))
        if low <= value <= high:
            return value
    raise ConfigError(f"{name} must be a duration from {low} to {high} such as 30s or 500ms, not {text!r}")


def _check(config: Config) -> None:
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"SPSP_LOG_FORMAT must be one of: {', '.join(LOG_FORMATS)}")
    if config.sqlite_driver not in SQLITE_DRIVERS:
        raise ConfigError(
            f"SPSP_SQLITE_DRIVER must be one of: {', '.join(SQLITE_DRIVERS)}, not {config.sqlite_driver!r}"
        )
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("SPSP_TLS_CERT and SPSP_TLS_KEY go together")
    if not 1 <= len(config.asset_code) <= 12:
        raise ConfigError("SPSP_ASSET_CODE must have 1 to 12 characters")
    if config.ilp_uplink is not None and not config.ilp_uplink.startswith(("btp+ws://", "btp+wss://")):
        raise ConfigError("SPSP_ILP_UPLINK must be a btp+ws:// or btp+wss:// URL")
    if config.jwt_secret is not None and (problem := hs256_secret_problem(config.jwt_secret)) is not None:
        raise ConfigError(f"SPSP_JWT_SECRET (the HS256 secret for offline pointers) {problem}")
