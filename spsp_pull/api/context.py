"""What the HTTP handlers need, held in the application under one typed key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from spsp_pull.api.auth import Authenticator
from spsp_pull.config import Config
from spsp_pull.domain.clock import Clock
from spsp_pull.domain.pull_refusal import Refusal
from spsp_pull.ilp.receiver_address import ReceiverAddresses
from spsp_pull.metrics import Metrics
from spsp_pull.store.database import Database

if TYPE_CHECKING:
    from spsp_pull.bridge.service import Bridge


class IlpEndpoint(Protocol):
    """The server's place on the Interledger network, as far as SPSP answers need it."""

    @property
    def address(self) -> str | None:
        """The server's ILP address; None until it is known (uplink mode learns it by IL-DCP)."""

    @property
    def ready(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class StaticIlpEndpoint:
    address: str | None
    ready: bool = True


@dataclass
class ApiContext:
    config: Config
    db: Database
    clock: Clock
    addresses: ReceiverAddresses
    ilp: IlpEndpoint
    auth: Authenticator
    metrics: Metrics = field(default_factory=Metrics)
    admin_account_id: int | None = None
    bridge: Bridge | None = None  # when a payout backend is configured
    # Why pulls of a pointer in this asset would be refused for want of a rate (None: no ILP side to ask).
    rate_refusal: Callable[[str], Awaitable[Refusal | None]] | None = None


CONTEXT = web.AppKey("context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
