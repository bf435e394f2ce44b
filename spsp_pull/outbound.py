"""HTTP requests to URLs a tenant or a payee chose (webhooks, payout notifications), within a TargetPolicy.

- A host written as an address is checked before the request (`target_url`); aiohttp connects to such a
  host as it is, without resolving it.
- A name is resolved by `PolicyResolver`, which keeps only the addresses the policy allows and fails when none
  is left. aiohttp connects to exactly the addresses a resolver returns (it never looks the name up again), so
  the address checked is the address connected to: a DNS answer that changes between check and connect (DNS
  rebinding) has nothing to change.
- Redirects are never followed (a 3xx is a failed delivery).
- `read_capped` reads at most a few KiB of an answer and drops the connection when more is coming.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from ipaddress import ip_address

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from spsp_pull.domain.outbound_targets import TargetPolicy, TargetRefused, read_target_url, redacted

RESPONSE_BODY_CAP = 64 * 1024


class NoAllowedAddress(OSError):
    """Every address a name resolved to is refused (an OSError, as aiohttp expects of a resolver)."""


class PolicyResolver(AbstractResolver):
    """Resolve with `inner`, keep only the addresses `policy` allows."""

    def __init__(self, policy: TargetPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [answer for answer in answers if self._allows(answer["host"])]
        if not allowed:
            refused = ", ".join(sorted({answer["host"] for answer in answers})) or "nothing"
            raise NoAllowedAddress(
                f"{host} resolves to {refused}: no public address (see SPSP_WEBHOOK_ALLOW_NETS)"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()

    def _allows(self, text: str) -> bool:
        try:
            return self._policy.allows(ip_address(text))
        except ValueError:
            return False


def client_session(
    policy: TargetPolicy, *, timeout: timedelta, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """A session that resolves names through `PolicyResolver` (with `resolver`, by default the system's).
    No proxy from the environment: a proxy would connect to addresses nobody checked."""
    connector = aiohttp.TCPConnector(
        resolver=PolicyResolver(policy, resolver or aiohttp.ThreadedResolver()), limit=0
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout.total_seconds()),
        trust_env=False,
    )


def target_url(url: str, policy: TargetPolicy) -> URL:
    """The URL to request, as a browser reads it; TargetRefused for an unreadable URL or a refused host
    spelled as an address or a loopback name. Names are checked when `PolicyResolver` resolves them."""
    try:
        target = read_target_url(url)
    except ValueError:
        raise TargetRefused(f"{redacted(url)} is not an http(s) URL") from None
    policy.check_url(target)
    return URL(target.href, encoded=True)


async def read_capped(response: aiohttp.ClientResponse, cap: int = RESPONSE_BODY_CAP) -> int:
    """Read the body up to `cap` bytes (the bytes read); past that, close the connection instead of
    reading on, so an endless answer costs at most `cap` bytes and a few socket buffers."""
    read = 0
    while read < cap:
        chunk = await response.content.read(cap - read)
        if not chunk:
            return read
        read += len(chunk)
    if not response.content.at_eof():
        response.close()
    return read


def failure_text(exc: BaseException) -> str:
    """A delivery failure, for the delivery log: why, never a URL's credentials."""
    if isinstance(exc, TargetRefused):
        return f"target refused: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, NoAllowedAddress):
        return f"target refused: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or exc.os_error
        return f"{type(exc).__name__}: cannot connect to {exc.host}:{exc.port}: {reason}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__
