"""Many STREAM connections on one ILP link: each gets an address of its own under the link's, and the Prepares
sent to that address.

    router = AddressRouter(btp_client, info.client_address)
    with router.route(handler) as address:      # e.g. "private.spsppull.shop.c1f3a-17"
        ...                                     # `router.send` for the connection's own Prepares

A connector (moneyd, ilp-connector) or the pull server's embedded endpoint delivers everything under the
link's address to it, so one BTP connection carries any number of STREAM connections: the peer learns each
one's address from its ConnectionNewAddress frame.
"""

import contextlib
import itertools
import secrets
from collections.abc import Iterator

from stream import ilp
from stream.aio.accounts import account_under
from stream.aio.plugin import IlpHandler, IlpLink, reject


class AddressRouter:
    def __init__(self, link: IlpLink, address: str) -> None:
        self._link = link
        self.address = address
        self._prefix = address + "."
        # A fresh prefix per router: a Prepare still addressed to a connection of an earlier run finds nobody.
        self._run = secrets.token_hex(3)
        self._numbers = itertools.count(1)
        self._handlers: dict[str, IlpHandler] = {}
        self.peak = 0
        """The most connections routed at once so far."""
        link.set_handler(self._dispatch)

    @property
    def routed(self) -> int:
        return len(self._handlers)

    @contextlib.contextmanager
    def route(self, handler: IlpHandler) -> Iterator[str]:
        """An address of its own for one connection, whose Prepares go to `handler` until the block ends."""
        segment = f"{self._run}-{next(self._numbers)}"
        self._handlers[segment] = handler
        self.peak = max(self.peak, len(self._handlers))
        try:
            yield self._prefix + segment
        finally:
            del self._handlers[segment]

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        return await self._link.send(prepare)

    def set_handler(self, handler: IlpHandler) -> None:
        raise TypeError("an AddressRouter routes by address: use route(handler)")

    async def _dispatch(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        segment = account_under(prepare.destination, self._prefix)
        handler = self._handlers.get(segment) if segment is not None else None
        if handler is None:
            return reject(ilp.ErrorCode.F02_UNREACHABLE, self.address, "no such connection")
        return await handler(prepare)
