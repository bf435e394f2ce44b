"""Where the server may send requests on a tenant's or a payee's say-so (webhooks, payout notifications).

Only globally routable unicast addresses are allowed, plus the networks an operator lists
(`SPSP_WEBHOOK_ALLOW_NETS`, for local receivers in development). URLs are read the way browsers read them
(the WHATWG URL standard, through ada): `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1` and
`%31%32%37.0.0.1` all name 127.0.0.1, so every spelling of an address meets the same check. IPv6 forms that
carry an IPv4 address (mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`, NAT64 `64:ff9b::/96`) are judged by the
IPv4 address too.

Pure: no I/O. A name is checked here only when it is a loopback name (`localhost`, `*.localhost`); the
addresses a name resolves to are checked at delivery (`spsp_pull.outbound`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

import ada_url

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_LOOPBACK = (IPv4Address("127.0.0.1"), IPv6Address("::1"))
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use, the embedding is the operator's choice


class TargetRefused(Exception):
    """A request target the policy does not allow; the message says why (never with credentials)."""


@dataclass(frozen=True, slots=True)
class TargetUrl:
    """An http(s) URL as a browser reads it: `href` canonical; `address` set when the host is an address."""

    href: str
    hostname: str  # an IPv6 address without its brackets
    address: IPAddress | None

    @property
    def is_loopback_name(self) -> bool:
        """`localhost` and `*.localhost` are loopback by definition (RFC 6761), whatever DNS says."""
        name = self.hostname.rstrip(".")
        return name == "localhost" or name.endswith(".localhost")


def read_target_url(text: str) -> TargetUrl:
    """Parse an http(s) URL with a host; ValueError for anything else. The host must be written out
    (`https:///hook`, which a browser reads as `https://hook/`, is refused)."""
    url = ada_url.URL(text)  # ValueError when it is not a URL
    if url.protocol not in ("http:", "https:") or not url.hostname or not urlsplit(text).hostname:
        raise ValueError("not an http(s) URL with a host")
    hostname = url.hostname.removeprefix("[").removesuffix("]")
    address = ip_address(hostname) if url.host_type != ada_url.HostType.DEFAULT else None
    return TargetUrl(url.href, hostname, address)


def redacted(url: str) -> str:
    """The URL fit for logs: user info and query (where credentials travel) replaced by `***`."""
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        return "<unparseable URL>"
    userinfo = "***@" if parsed.username or parsed.password else ""
    query = "?***" if parsed.search else ""
    return f"{parsed.protocol}//{userinfo}{parsed.host}{parsed.pathname}{query}"


def destination_of(url: str) -> str:
    """`scheme://host[:port]`: the receiver a URL names, as delivery limits count receivers."""
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        return url[:300]
    return f"{parsed.protocol}//{parsed.host}"


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for when packets to it reach that IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, unspecified, multicast,
    reserved, documentation, benchmarking, site-local or otherwise special-purpose."""
    if isinstance(address, IPv6Address):
        if address in _NAT64_LOCAL or address.is_site_local:
            return False
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Public unicast addresses, plus `allow_nets` (default none)."""

    allow_nets: tuple[IPNetwork, ...] = ()

    def allows(self, address: IPAddress) -> bool:
        return self._listed(address) or is_public(address)

    def check_address(self, address: IPAddress) -> None:
        if not self.allows(address):
            raise TargetRefused(f"{address} is not a public address (see SPSP_WEBHOOK_ALLOW_NETS)")

    def check_url(self, target: TargetUrl) -> None:
        """Refuse a URL whose host is, by its spelling alone, an address or name this policy refuses."""
        if target.address is not None:
            self.check_address(target.address)
        elif target.is_loopback_name and not any(self.allows(address) for address in _LOOPBACK):
            raise TargetRefused(f"{target.hostname} is a loopback name (see SPSP_WEBHOOK_ALLOW_NETS)")

    def _listed(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, IPv6Address) and (embedded := embedded_ipv4(address)) is not None:
            candidates.append(embedded)
        return any(
            candidate in network
            for candidate in candidates
            for network in self.allow_nets
            if candidate.version == network.version
        )


PUBLIC_ONLY = TargetPolicy()


def parse_networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR blocks (`127.0.0.0/8`, `::1/128`; a bare address is a /32 or /128), blanks skipped;
    ValueError names the bad one."""
    networks: list[IPNetwork] = []
    for item in items:
        if not item.strip():
            continue
        try:
            networks.append(ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item.strip()!r} is not a network in CIDR notation") from None
    return tuple(networks)
