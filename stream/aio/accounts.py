"""Mini-accounts rules: account names, the tokens they are pinned to (a store protocol, and a store in
memory), and which account an address belongs to."""

import base64
import enum
import hashlib
import hmac
import re
from typing import Protocol

_SEGMENT = re.compile(r"[A-Za-z0-9_~-]+")
MAX_ACCOUNT_LENGTH = 1023


def account_name(username: str, token: str) -> str:
    """The account a BTP client authenticates as: its username, or base64url(sha256(token)) without one."""
    if username:
        return username
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_account(name: str) -> bool:
    """Whether `name` can be one segment of an ILP address (which has at most 1023 characters)."""
    return len(name) <= MAX_ACCOUNT_LENGTH and _SEGMENT.fullmatch(name) is not None


def account_under(destination: str, prefix: str) -> str | None:
    """The segment after `prefix` (which ends with a dot) in `destination`, or None if it is not under it."""
    if not destination.startswith(prefix):
        return None
    account, _, _ = destination[len(prefix) :].partition(".")
    return account or None


class PinVerdict(enum.Enum):
    """A token pin store's answer to a login; the value is the BTP error message of a refusal."""

    ACCEPTED = "accepted"
    WRONG_TOKEN = "incorrect token for account"  # noqa: S105 (a message)
    FULL = "no new accounts: this server holds as many account names as it may"


class TokenPinStore(Protocol):
    """Binds an account name to the first token it is used with: afterwards only that token logs in as it.

    Stores what `token_digest` makes of a token, never the token; holds a bounded number of accounts and
    answers FULL for a new one beyond them. Of concurrent first logins with different tokens, one wins."""

    async def pin(self, account: str, digest: bytes) -> PinVerdict: ...


def token_digest(token: str) -> bytes:
    """What a pin store keeps of a token: its SHA-256, apart from the hash a tokenless account is named by."""
    return hashlib.sha256(b"btp-token-pin\x00" + token.encode("utf-8")).digest()


class MemoryTokenPins:
    """Pins kept by this process only (forgotten on restart), for at most `max_accounts` account names."""

    def __init__(self, max_accounts: int = 10_000) -> None:
        self._max_accounts = max_accounts
        self._digests: dict[str, bytes] = {}

    async def pin(self, account: str, digest: bytes) -> PinVerdict:
        pinned = self._digests.get(account)
        if pinned is None:
            if len(self._digests) >= self._max_accounts:
                return PinVerdict.FULL
            self._digests[account] = pinned = digest
        return PinVerdict.ACCEPTED if hmac.compare_digest(pinned, digest) else PinVerdict.WRONG_TOKEN

    def __len__(self) -> int:
        return len(self._digests)
