"""Mini-accounts rules (no I/O): account names, pinned tokens, and which account an address belongs to."""

import base64
import hashlib
import hmac
import re

_SEGMENT = re.compile(r"[A-Za-z0-9_~-]+")


def account_name(username: str, token: str) -> str:
    """The account a BTP client authenticates as: its username, or base64url(sha256(token)) without one."""
    if username:
        return username
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_account(name: str) -> bool:
    """Whether `name` can be one segment of an ILP address."""
    return _SEGMENT.fullmatch(name) is not None


def account_under(destination: str, prefix: str) -> str | None:
    """The segment after `prefix` (which ends with a dot) in `destination`, or None if it is not under it."""
    if not destination.startswith(prefix):
        return None
    account, _, _ = destination[len(prefix) :].partition(".")
    return account or None


class TokenPins:
    """The first token seen for an account is the only one accepted for it afterwards."""

    def __init__(self) -> None:
        self._digests: dict[str, bytes] = {}

    def accept(self, account: str, token: str) -> bool:
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        pinned = self._digests.setdefault(account, digest)
        return hmac.compare_digest(pinned, digest)

    def __len__(self) -> int:
        return len(self._digests)
