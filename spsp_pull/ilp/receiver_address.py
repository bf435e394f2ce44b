"""Destination addresses and shared secrets for SPSP responses, derived statelessly.

`destination_account = <server address>.<tag>~<nonce>` and `shared_secret = HMAC(server secret, tag~nonce)`.
The tag names the pointer without revealing its bearer token (every connector on the path sees addresses); the
random nonce gives each query its own secret (RFC 0009). Any instance holding the server secret can answer a
Prepare to such an address without having seen the query.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_SECRET_LABEL = b"spsp_pull_shared_secret"
_SEGMENT = re.compile(r"^([A-Za-z0-9_-]{1,64})~([A-Za-z0-9_-]{8,64})$")
PUSH_TAG = "push"


@dataclass(frozen=True, slots=True)
class ReceiverDetails:
    destination_account: str
    shared_secret: bytes


@dataclass(frozen=True, slots=True)
class ConnectionId:
    """What a Prepare's destination says: which pointer (tag) and which query (the whole segment)."""

    tag: str
    segment: str


class ReceiverAddresses:
    def __init__(self, server_secret: bytes) -> None:
        if len(server_secret) < 32:
            raise ValueError("the server secret needs at least 32 bytes")
        self._key = hmac.new(server_secret, _SECRET_LABEL, hashlib.sha256).digest()

    def issue(self, server_address: str, tag: str) -> ReceiverDetails:
        segment = f"{tag}~{secrets.token_urlsafe(12)}"
        return ReceiverDetails(f"{server_address}.{segment}", self.secret_for(segment))

    def secret_for(self, segment: str) -> bytes:
        return hmac.new(self._key, segment.encode("ascii"), hashlib.sha256).digest()

    @staticmethod
    def parse(server_address: str, destination: str) -> ConnectionId | None:
        """The connection a destination addresses, or None if it is not one of ours."""
        prefix = server_address + "."
        if not destination.startswith(prefix):
            return None
        segment = destination[len(prefix) :].split(".", 1)[0]
        match = _SEGMENT.match(segment)
        if match is None:
            return None
        return ConnectionId(match.group(1), segment)
