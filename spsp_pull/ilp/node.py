"""The server's place on the Interledger network: an embedded BTP endpoint, or an uplink to a connector.

Embedded (the default): the server hosts a mini-accounts-style BTP endpoint, so a payee's client connects
straight to it and gets `<server address>.<account>` by IL-DCP. Uplink: the server is one BTP client of an ILP
connector (moneyd, ilp-connector) and learns its address and asset by IL-DCP. Exactly one BTP connection per
uplink account: a connector delivers an account's packets to every socket logged in with it.

What a payee is paid is decided by the node's link, once, when the answer arrives: a Fulfill its `send` hands
back is paid (and the pull debits it); one that came after the Prepare expired, or whose fulfillment does not
match, is refused there (R00 / F05, `stream.aio.plugin.accept_reply`) and pays nothing. The embedded endpoint
keeps no balances of its own, so a refused Fulfill credits no account anywhere.
"""

from __future__ import annotations

import errno
import logging
from typing import Protocol

from spsp_pull.rates import Asset
from stream.aio.accounts import TokenPinStore
from stream.aio.btp_client import BtpClient
from stream.aio.btp_server import BtpServer
from stream.aio.plugin import IlpHandler, IlpLink

log = logging.getLogger(__name__)


class IlpNode(Protocol):
    @property
    def address(self) -> str | None: ...

    @property
    def asset(self) -> Asset | None: ...

    @property
    def ready(self) -> bool: ...

    @property
    def link(self) -> IlpLink: ...

    def set_handler(self, handler: IlpHandler) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class EmbeddedNode:
    def __init__(
        self,
        address: str,
        asset: Asset,
        *,
        host: str,
        port: int,
        fallback_to_free_port: bool,
        pins: TokenPinStore | None = None,
    ) -> None:
        self._asset = asset
        self._fallback = fallback_to_free_port
        self._pins = pins
        self._server = BtpServer(address, (asset.code, asset.scale), host=host, port=port, pins=pins)
        self._handler: IlpHandler | None = None
        self._started = False

    @property
    def address(self) -> str:
        return self._server.address

    @property
    def asset(self) -> Asset:
        return self._asset

    @property
    def ready(self) -> bool:
        return self._started

    @property
    def link(self) -> IlpLink:
        return self._server

    @property
    def btp_port(self) -> int:
        return self._server.port

    def btp_url(self, username: str, token: str) -> str:
        return self._server.url(username, token)

    def set_handler(self, handler: IlpHandler) -> None:
        self._handler = handler
        self._server.set_handler(handler)

    async def start(self) -> None:
        try:
            await self._server.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or not self._fallback:
                raise
            wanted = self._server.port
            old = self._server
            self._server = BtpServer(
                old.address, (old.asset_code, old.asset_scale), host=old.host, port=0, pins=self._pins
            )
            if self._handler is not None:
                self._server.set_handler(self._handler)
            await self._server.start()
            log.warning(
                "BTP port %d is taken; the embedded endpoint listens on %d", wanted, self._server.port
            )
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self._server.stop()


class UplinkNode:
    def __init__(self, url: str) -> None:
        self._url = url
        self._handler: IlpHandler | None = None
        self._client = BtpClient(url, reconnect=True)

    def reset(self) -> None:
        """A fresh client after a failed first connection (the BTP client does not restart itself)."""
        self._client = BtpClient(self._url, reconnect=True)
        if self._handler is not None:
            self._client.set_handler(self._handler)

    @property
    def address(self) -> str | None:
        return self._client.address

    @property
    def asset(self) -> Asset | None:
        info = self._client.ildcp_info
        return None if info is None else Asset(info.asset_code, info.asset_scale)

    @property
    def ready(self) -> bool:
        return self._client.connected.is_set() and self._client.ildcp_info is not None

    @property
    def link(self) -> IlpLink:
        return self._client

    def set_handler(self, handler: IlpHandler) -> None:
        self._handler = handler
        self._client.set_handler(handler)

    async def start(self) -> None:
        await self._client.connect()
        info = await self._client.ildcp()
        log.info("uplink: address %s, asset %s/%d", info.client_address, info.asset_code, info.asset_scale)

    async def stop(self) -> None:
        await self._client.close()
