"""Running the server: storage, secrets, the HTTP API, the ILP endpoint and the background workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from spsp_pull.api.app import build_app
from spsp_pull.api.auth import Authenticator
from spsp_pull.api.context import ApiContext, IlpEndpoint, StaticIlpEndpoint
from spsp_pull.api.query_fast_path import QueryFastPathSite, http_runner_options
from spsp_pull.api.views import webhook_body
from spsp_pull.bridge import Bridge, start_bridge
from spsp_pull.config import DEFAULT_BTP_PORT, Config
from spsp_pull.config_error import ConfigError
from spsp_pull.domain.clock import Clock, SystemClock
from spsp_pull.ilp.node import EmbeddedNode, IlpNode, UplinkNode
from spsp_pull.ilp.pull_session import PullSettings
from spsp_pull.ilp.receiver_address import ReceiverAddresses
from spsp_pull.ilp.stream_server import StreamServer, StreamServerSettings
from spsp_pull.logging_setup import configure_logging
from spsp_pull.metrics import Metrics
from spsp_pull.rates import Asset, StaticRates
from spsp_pull.store import idempotency
from spsp_pull.store.accounts import AdminKeyRevoked, ensure_admin
from spsp_pull.store.audit import AuditReport, audit_ledger
from spsp_pull.store.btp_pins import DatabaseTokenPins
from spsp_pull.store.database import Database
from spsp_pull.store.reservations import recover_expired
from spsp_pull.store.settings import shared_setting
from spsp_pull.webhooks import WebhookSettings, WebhookWorker
from stream.aio.accounts import TokenPinStore

log = logging.getLogger("spsp_pull")
AUTH_TOKEN_FILE = "auth-token"  # noqa: S105 (a file name)
RECOVERY_INTERVAL = 5.0
IDEMPOTENCY_PURGE_INTERVAL = 600.0
AUDIT_LOG_LINES = 20


@dataclass
class Server:
    """A started server. `stop()` (or leaving `running()`) shuts everything down: `resources` holds every
    part that needs closing, closed in the reverse order of their start."""

    config: Config
    db: Database
    context: ApiContext
    runner: web.AppRunner
    port: int
    auth_token: str
    webhooks: WebhookWorker
    resources: contextlib.AsyncExitStack
    node: IlpNode | None = None
    stream_server: StreamServer | None = None
    bridge: Bridge | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        await self.resources.aclose()


def load_or_create_auth_token(config: Config) -> tuple[str, bool]:
    """SPSP_AUTH_TOKEN, or the token generated on first start and kept in the data directory."""
    if config.auth_token:
        return config.auth_token, False
    path = config.data_dir / AUTH_TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    token = "sk_admin_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token, True


def tls_context(config: Config) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


async def start_server(
    config: Config,
    *,
    clock: Clock | None = None,
    ilp: IlpEndpoint | None = None,
    announce: Callable[[str], None] = print,
) -> Server:
    """Start everything; if a part fails to start, what had started is stopped again before the error
    propagates (nothing is left listening, running or open)."""
    async with contextlib.AsyncExitStack() as resources:
        server = await _start(config, resources, clock or SystemClock(), ilp, announce)
        server.resources = resources.pop_all()
    return server


async def _start(
    config: Config,
    resources: contextlib.AsyncExitStack,
    clock: Clock,
    ilp: IlpEndpoint | None,
    announce: Callable[[str], None],
) -> Server:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    auth_token, generated = load_or_create_auth_token(config)
    db = Database(
        config.resolved_database_url(),
        pool_size=config.database_pool_size,
        sqlite_driver=config.sqlite_driver,
    )
    resources.push_async_callback(db.close)
    await db.migrate()
    try:
        admin = await ensure_admin(db, auth_token, clock.now())
    except AdminKeyRevoked:
        raise ConfigError(
            "the admin key (SPSP_AUTH_TOKEN or the data dir's auth-token file) was revoked: configure another"
        ) from None
    await _purge_idempotency(db, clock, config)  # then every IDEMPOTENCY_PURGE_INTERVAL
    server_secret = bytes.fromhex(
        await shared_setting(db, "stream_server_secret", lambda: secrets.token_hex(32))
    )
    addresses = ReceiverAddresses(server_secret)
    bridge = None
    if config.bridge is not None:
        bridge = await start_bridge(config.bridge, db, clock)
        resources.push_async_callback(bridge.stop)
    pins = DatabaseTokenPins(db, clock, config.btp_max_accounts)
    node = make_node(config, pins) if ilp is None else None
    context = ApiContext(
        config=config,
        db=db,
        clock=clock,
        addresses=addresses,
        ilp=ilp or node or StaticIlpEndpoint(config.ilp_address),
        auth=Authenticator(db),
        metrics=db.metrics,
        admin_account_id=admin.id,
        bridge=bridge,
    )
    stream_server = None
    if node is not None:
        stream_server = StreamServer(
            node=node,
            db=db,
            clock=clock,
            addresses=addresses,
            rates=StaticRates(config.rates),
            notify=lambda record, now: webhook_body(config, record, now),
            metrics=context.metrics,
            settings=StreamServerSettings(
                pull=PullSettings(reservation_lease=config.reservation_lease, lease_wait=config.sender_wait),
                max_in_flight=config.max_in_flight,
                packet_timeout=config.packet_timeout,
                max_packet_amount=config.max_packet_amount,
                limits=config.connection_limits,
            ),
        )
        node.set_handler(stream_server.handle)
        context.rate_refusal = stream_server.rate_refusal
        resources.push_async_callback(node.stop)  # an uplink is joined later, by a task; stopped the same
        if isinstance(node, EmbeddedNode):
            await node.start()
        resources.push_async_callback(stream_server.stop)  # before the node stops
    app = build_app(context)
    runner = web.AppRunner(app, **http_runner_options(context))
    await runner.setup()
    resources.push_async_callback(runner.cleanup)
    site = QueryFastPathSite(runner, config.bind, config.port, ssl_context=tls_context(config))
    await site.start()
    port = _bound_port(runner) or config.port
    webhooks = WebhookWorker(db, clock, WebhookSettings(targets=config.outbound_targets))
    server = Server(
        config, db, context, runner, port, auth_token, webhooks, resources, node, stream_server, bridge
    )
    resources.push_async_callback(_cancel, server.tasks)
    if isinstance(node, UplinkNode):
        # /healthz says 503 until the connector has accepted us and told us our address (IL-DCP).
        server.tasks.append(asyncio.create_task(_join_uplink(node, announce)))
    server.tasks.append(asyncio.create_task(_forever(webhooks.run, "webhooks")))
    server.tasks.append(asyncio.create_task(_forever(lambda: _recover(db, clock), "recovery")))
    purge = _forever(lambda: _purge_idempotency_periodically(db, clock, config), "idempotency purge")
    server.tasks.append(asyncio.create_task(purge))
    if config.audit_interval is not None:
        every = config.audit_interval.total_seconds()
        audit = _forever(lambda: _audit_every(db, clock, context.metrics, every), "audit")
        server.tasks.append(asyncio.create_task(audit))
    if generated:
        announce(f"Generated an admin API key (kept in {config.data_dir / AUTH_TOKEN_FILE}): {auth_token}")
    scheme = "https" if config.tls_cert else "http"
    announce(
        f"spsp-pull listening on {scheme}://{config.bind}:{port} (pointers: {config.pointer('<token>')})"
    )
    if isinstance(node, EmbeddedNode):
        announce(f"embedded ILP endpoint: btp+ws://{config.btp_bind}:{node.btp_port} as {node.address}")
    return server


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _join_uplink(node: UplinkNode, announce: Callable[[str], None]) -> None:
    delay = 0.5
    while True:
        try:
            await node.start()
        except (ConnectionError, RuntimeError, OSError) as exc:
            log.warning("uplink not reachable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            node.reset()
            continue
        announce(f"joined the ILP network as {node.address}")
        return


def make_node(config: Config, pins: TokenPinStore | None = None) -> IlpNode | None:
    if config.ilp_uplink:
        return UplinkNode(config.ilp_uplink)
    if config.btp_port is None:
        return None
    return EmbeddedNode(
        config.ilp_address,
        Asset(config.asset_code, config.asset_scale),
        host=config.btp_bind,
        port=config.btp_port,
        fallback_to_free_port=config.btp_port == DEFAULT_BTP_PORT,
        pins=pins,
    )


@asynccontextmanager
async def running(config: Config, **kwargs: object) -> AsyncIterator[Server]:
    server = await start_server(config, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        await server.stop()


async def serve_forever(config: Config) -> None:
    configure_logging(config.log_level, config.log_format)
    server = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


async def _purge_idempotency(db: Database, clock: Clock, config: Config) -> None:
    """Forget stored `Idempotency-Key` responses (and lapsed claims) older than the retention."""
    expiry = idempotency.Expiry(config.idempotency_claim_ttl, config.idempotency_retention)
    if purged := await idempotency.purge(db, clock.now(), expiry):
        log.info("purged %d stored Idempotency-Key responses", purged)


async def _purge_idempotency_periodically(db: Database, clock: Clock, config: Config) -> None:
    while True:
        await asyncio.sleep(IDEMPOTENCY_PURGE_INTERVAL)
        await _purge_idempotency(db, clock, config)


async def _recover(db: Database, clock: Clock) -> None:
    while True:
        recovered = await recover_expired(db, now=clock.now())
        for settlement in recovered:
            log.warning(
                "reservation %d of pointer %d closed after its lease ran out: %d debited",
                settlement.reservation_id,
                settlement.pointer_id,
                settlement.sent,
            )
        await asyncio.sleep(RECOVERY_INTERVAL)


async def _audit_every(db: Database, clock: Clock, metrics: Metrics, seconds: float) -> None:
    """The ledger audit at start and then every `seconds`; its result goes to the log and the metrics."""
    while True:
        publish_audit(metrics, await audit_ledger(db, now=clock.now()))
        await asyncio.sleep(seconds)


def publish_audit(metrics: Metrics, report: AuditReport) -> None:
    for mismatch in report.mismatches[:AUDIT_LOG_LINES]:
        log.error("ledger audit: %s", mismatch.line())
    if len(report.mismatches) > AUDIT_LOG_LINES:
        log.error(
            "ledger audit: %d more mismatches (spsp-pull audit lists them)",
            len(report.mismatches) - AUDIT_LOG_LINES,
        )
    metrics.audit(
        mismatches=len(report.mismatches),
        at=report.at,
        took=report.duration,
        pointers=report.pointers,
    )


async def _forever(step: Callable[[], Awaitable[None]], name: str) -> None:
    """Run a background loop; log and restart it (after a pause) if it fails."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s worker failed; restarting in 1 s", name)
            await asyncio.sleep(1)


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None
