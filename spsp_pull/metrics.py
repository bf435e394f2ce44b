"""What the server counts, exposed at /metrics in the Prometheus text format (`prometheus_client`).

Each `Metrics` has its own registry (never the library's global one), so several servers in one process
count apart. The hot paths pay little: labelled children are looked up once and kept, a pull is observed once
when it ends (its packets counted by the pull itself), and the pool gauges are read only when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what `render()` writes
# Any other method (clients may send any token) is counted as OTHER, so the labels stay few.
COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# (outcome, reason) series shown from the start, at 0
PULL_OUTCOMES = (
    ("complete", ""),
    ("partial", ""),
    ("refused", "no-rate"),
    ("refused", "nothing-available"),
    ("failed", ""),
)
RESERVATION_EVENTS = ("made", "settled", "released", "recovered")
WEBHOOK_OUTCOMES = ("delivered", "retrying", "gave-up")

QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PULL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
PACKET_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000, 100_000)


def elapsed_since(started_ns: int) -> timedelta:
    """The time since `started_ns`, a `time.perf_counter_ns()` reading."""
    return timedelta(microseconds=(time.perf_counter_ns() - started_ns) // 1000)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._http_requests = Counter(
            "spsp_http_requests",
            "HTTP requests answered, by method and status",
            ("method", "status"),
            registry=registry,
        )
        self._http_children: dict[tuple[str, int], Counter] = {}
        self._queries = Counter("spsp_queries", "SPSP queries answered", registry=registry)
        self._query_seconds = Histogram(
            "spsp_query_duration_seconds",
            "Time to answer an SPSP query for a pointer (the database lookup included)",
            buckets=QUERY_BUCKETS,
            registry=registry,
        )
        self._pointers_created = Counter("spsp_pointers_created", "Pull pointers created", registry=registry)
        self._pull_connections = Counter(
            "spsp_pull_connections", "STREAM connections to pull pointers", registry=registry
        )
        self._connections_refused = Counter(
            "spsp_pull_stream_connections_refused",
            "new STREAM connections refused (T03) for want of a place",
            ("kind",),
            registry=registry,
        )
        self._connections_evicted = Counter(
            "spsp_pull_stream_connections_evicted",
            "STREAM connections closed to make room for another",
            ("kind",),
            registry=registry,
        )
        self._pulls = Counter(
            "spsp_pulls",
            "Pulls over STREAM by outcome (complete, partial, refused with a reason, failed)",
            ("outcome", "reason"),
            registry=registry,
        )
        self._pull_seconds = Histogram(
            "spsp_pull_duration_seconds",
            "How long a pull took, from the payee's first request for money to its settlement",
            buckets=PULL_BUCKETS,
            registry=registry,
        )
        self._pull_packets = Histogram(
            "spsp_pull_packets",
            "Packets fulfilled per pull",
            buckets=PACKET_BUCKETS,
            registry=registry,
        )
        self._reservations = Counter(
            "spsp_reservations",
            "Reservations of allowance made, and closed: settled, released or recovered after their lease",
            ("event",),
            registry=registry,
        )
        self._webhooks = Counter(
            "spsp_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, failed and retrying, failed for good)",
            ("outcome",),
            registry=registry,
        )
        self._payouts = Counter(
            "spsp_payouts", "Payouts entering each state (NEW, QUEUED, ...)", ("state",), registry=registry
        )
        self._pool_checked_out = Gauge(
            "spsp_db_pool_checked_out",
            "Database connections in use, per pool",
            ("pool",),
            registry=registry,
        )
        self._stream_connections = Gauge(
            "spsp_pull_stream_connections",
            "STREAM connections this process holds: open or closing (all), and holding a place of its "
            "connection budget (pull, push)",
            ("held",),
            registry=registry,
        )
        self._audit_gauges: tuple[Gauge, Gauge, Gauge, Gauge] | None = None  # from the first audit on
        for outcome, reason in PULL_OUTCOMES:
            self._pulls.labels(outcome, reason)
        for event in RESERVATION_EVENTS:
            self._reservations.labels(event)
        for outcome in WEBHOOK_OUTCOMES:
            self._webhooks.labels(outcome)

    # -- HTTP and SPSP ---------------------------------------------------------------------------------

    def http_request(self, method: str, status: int) -> None:
        key = (method if method in COUNTED_METHODS else "OTHER", status)
        child = self._http_children.get(key)
        if child is None:
            child = self._http_children[key] = self._http_requests.labels(key[0], str(status))
        child.inc()

    def query_answered(self) -> None:
        self._queries.inc()

    def query_took(self, took: timedelta) -> None:
        self._query_seconds.observe(took.total_seconds())

    def pointer_created(self) -> None:
        self._pointers_created.inc()

    # -- STREAM connections and pulls ------------------------------------------------------------------

    def pull_connection(self) -> None:
        self._pull_connections.inc()

    def connection_refused(self, kind: str) -> None:
        self._connections_refused.labels(kind).inc()

    def connection_evicted(self, kind: str) -> None:
        self._connections_evicted.labels(kind).inc()

    def pull_refused(self, reason: str) -> None:
        """A pull the server would not serve; `reason` is a short fixed code (`domain.pull_refusal`'s)."""
        self._pulls.labels("refused", reason).inc()

    def pull_ended(
        self,
        *,
        failed: bool,
        wanted_more: bool,
        delivered: int,
        refused: str | None,
        took: timedelta,
        packets: int,
    ) -> None:
        """One pull over: `wanted_more` when the payee asked for more than it got; `refused`, the refusal
        code of a pull that got nothing, when the server knows why."""
        if failed:
            self._pulls.labels("failed", "").inc()
        elif not wanted_more:
            self._pulls.labels("complete", "").inc()
        elif delivered:
            self._pulls.labels("partial", "").inc()
        else:
            self.pull_refused(refused or "nothing-available")
        self._pull_seconds.observe(took.total_seconds())
        self._pull_packets.observe(packets)

    # -- the ledger, webhooks and payouts --------------------------------------------------------------

    def reservations(self, event: str, count: int = 1) -> None:
        """`count` reservations `made`, `settled`, `released` or `recovered` (once committed)."""
        if count:
            self._reservations.labels(event).inc(count)

    def webhook_delivery(self, *, delivered: bool, retrying: bool) -> None:
        outcome = "delivered" if delivered else "retrying" if retrying else "gave-up"
        self._webhooks.labels(outcome).inc()

    def payout_entered(self, state: str) -> None:
        self._payouts.labels(state).inc()

    def watch_stream_connections(self, held: str, count: Callable[[], int]) -> None:
        """Report `count()` for the STREAM connections `held` ("all", or a budget's kind) when read."""
        self._stream_connections.labels(held).set_function(count)

    def watch_pool(self, pool: str, checked_out: Callable[[], int]) -> None:
        """Report `checked_out()` (connections in use) for `pool` whenever the metrics are read."""
        self._pool_checked_out.labels(pool).set_function(checked_out)

    def audit(self, *, mismatches: int, at: datetime, took: timedelta, pointers: int) -> None:
        """The last ledger audit: what it found, when it ran (Unix time), how long it took, what it read."""
        if self._audit_gauges is None:
            self._audit_gauges = (
                Gauge(
                    "spsp_pull_audit_mismatches",
                    "Mismatches the last ledger audit found (0: every counter agrees with the ledger)",
                    registry=self.registry,
                ),
                Gauge(
                    "spsp_pull_audit_last_run_timestamp_seconds",
                    "When the last ledger audit ran (Unix time)",
                    registry=self.registry,
                ),
                Gauge(
                    "spsp_pull_audit_duration_seconds",
                    "How long the last ledger audit took",
                    registry=self.registry,
                ),
                Gauge(
                    "spsp_pull_audit_pointers", "Pointers the last ledger audit read", registry=self.registry
                ),
            )
        values = (mismatches, at.timestamp(), took.total_seconds(), pointers)  # Prometheus takes seconds
        for gauge, value in zip(self._audit_gauges, values, strict=True):
            gauge.set(value)

    # -- reading ---------------------------------------------------------------------------------------

    def value(self, name: str, **labels: str) -> int:
        """A counter's value as exposed (0 when absent): `value("spsp_http_requests_total", ...)`."""
        return int(self.registry.get_sample_value(name, labels) or 0)

    def render(self) -> str:
        return generate_latest(self.registry).decode()
