"""Mini-accounts rules and BTP URLs (no I/O)."""

import hashlib

import pytest

from stream.aio.accounts import (
    MemoryTokenPins,
    PinVerdict,
    account_name,
    account_under,
    is_valid_account,
    token_digest,
)
from stream.aio.btp_client import BtpClient, parse_btp_url


def test_account_is_the_username_when_there_is_one() -> None:
    assert account_name("alice", "whatever") == "alice"


def test_account_without_username_is_base64url_sha256_of_the_token() -> None:
    # base64url(sha256("secret")), unpadded, as mini-accounts computes it.
    assert account_name("", "secret") == "K7gNU3sdo-OL0wNhqoVWhr3g6s1xYv72ol_pe_Unols"
    assert is_valid_account(account_name("", "secret"))


@pytest.mark.parametrize("name", ["", "a.b", "a b", "ä", "a/b", "a=b"])
def test_names_that_are_not_address_segments_are_invalid(name: str) -> None:
    assert not is_valid_account(name)


@pytest.mark.parametrize(
    ("destination", "account"),
    [
        ("private.srv.alice", "alice"),
        ("private.srv.alice.conn.7", "alice"),
        ("private.srv", None),
        ("private.srvx.alice", None),
        ("private.srv.", None),
        ("g.other.alice", None),
    ],
)
def test_account_under_a_prefix(destination: str, account: str | None) -> None:
    assert account_under(destination, "private.srv.") == account


async def test_first_token_of_an_account_is_pinned() -> None:
    pins = MemoryTokenPins()

    assert await pins.pin("alice", token_digest("one")) is PinVerdict.ACCEPTED
    assert await pins.pin("alice", token_digest("one")) is PinVerdict.ACCEPTED
    assert await pins.pin("alice", token_digest("two")) is PinVerdict.WRONG_TOKEN
    assert await pins.pin("bob", token_digest("two")) is PinVerdict.ACCEPTED
    assert len(pins) == 2


async def test_memory_pins_refuse_new_accounts_beyond_their_bound() -> None:
    pins = MemoryTokenPins(max_accounts=2)

    for name in ("alice", "bob"):
        assert await pins.pin(name, token_digest(name)) is PinVerdict.ACCEPTED
    assert await pins.pin("carol", token_digest("carol")) is PinVerdict.FULL
    assert await pins.pin("alice", token_digest("alice")) is PinVerdict.ACCEPTED
    assert await pins.pin("bob", token_digest("x")) is PinVerdict.WRONG_TOKEN
    assert len(pins) == 2


def test_a_pin_digest_is_not_the_tokenless_account_name_of_the_token() -> None:
    digest = token_digest("secret")
    assert len(digest) == 32
    assert digest != hashlib.sha256(b"secret").digest()
    assert digest == token_digest("secret") != token_digest("secret2")


def test_account_names_longer_than_an_ilp_address_are_invalid() -> None:
    assert is_valid_account("a" * 1023)
    assert not is_valid_account("a" * 1024)


@pytest.mark.parametrize(
    ("url", "ws_url", "username", "token"),
    [
        ("btp+ws://alice:secret@127.0.0.1:7768", "ws://127.0.0.1:7768", "alice", "secret"),
        ("btp+wss://a:b@example.com/btp/path?x=1", "wss://example.com/btp/path?x=1", "a", "b"),
        ("btp+ws://:only-token@[::1]:9000", "ws://[::1]:9000", "", "only-token"),
        ("btp+ws://us%40er:p%3Ass@host", "ws://host", "us@er", "p:ss"),
        ("btp+ws://host:1", "ws://host:1", "", ""),
    ],
)
def test_btp_url_is_split_into_websocket_url_and_credentials(
    url: str, ws_url: str, username: str, token: str
) -> None:
    parsed = parse_btp_url(url)

    assert (parsed.ws_url, parsed.username, parsed.token) == (ws_url, username, token)


@pytest.mark.parametrize("url", ["ws://a:b@host", "http://host", "btp+ws://a:b@"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="BTP URL"):
        parse_btp_url(url)


def test_token_stays_out_of_reprs() -> None:
    url = "btp+ws://alice:very-secret@127.0.0.1:1"

    assert "very-secret" not in repr(parse_btp_url(url))
    assert "very-secret" not in repr(BtpClient(url))
