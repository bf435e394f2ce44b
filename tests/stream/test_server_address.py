import pytest

from stream.address import is_valid_address
from stream.errors import DecryptionError, EncodeError, InvalidTokenError
from stream.server_address import (
    ConnectionToken,
    ServerSecret,
    decode_token_segment,
    encode_token_segment,
    token_segment,
)
from tests.stream.vectors import load, unhex

VECTOR = load("stream_server_address.json")
SECRET = ServerSecret(unhex(VECTOR["serverSecret"]))
TOKEN = unhex(VECTOR["token"])

# --- vectors: stream_server_address.json -------------------------------------------------------------------


def test_issues_the_js_token_address_and_secret() -> None:
    issued = SECRET.issue(
        VECTOR["serverAccount"],
        VECTOR["connectionTag"],
        token_nonce=unhex(VECTOR["tokenNonce"]),
        iv=unhex(VECTOR["iv"]),
    )
    assert issued.token.hex() == VECTOR["token"]
    assert issued.destination_account == VECTOR["destinationAccount"]
    assert issued.shared_secret.hex() == VECTOR["sharedSecret"]


def test_shared_secret_of_the_js_token() -> None:
    assert SECRET.shared_secret(TOKEN).hex() == VECTOR["sharedSecret"]


def test_opens_the_js_token() -> None:
    assert SECRET.open_token(TOKEN) == ConnectionToken(unhex(VECTOR["tokenNonce"]), VECTOR["connectionTag"])


def test_opens_the_js_address() -> None:
    destination = VECTOR["destinationAccount"] + ".more.segments"
    token, opened = SECRET.open_address(VECTOR["serverAccount"], destination)
    assert token == TOKEN
    assert opened.connection_tag == VECTOR["connectionTag"]


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_random_issue_round_trips_with_receipts() -> None:
    issued = SECRET.issue("g.server", "tag_1", receipt_nonce=bytes(16), receipt_secret=b"\x07" * 32)
    assert is_valid_address(issued.destination_account)
    token, opened = SECRET.open_address("g.server", issued.destination_account)
    assert token == issued.token
    assert opened.connection_tag == "tag_1"
    assert opened.receipt_nonce == bytes(16)
    assert opened.receipt_secret == b"\x07" * 32
    assert repr(b"\x07" * 32)[2:-1] not in repr(opened)  # the secret; the random nonce may hold a \x07
    assert issued.shared_secret.hex() not in repr(issued)
    assert SECRET.issue("g.server").destination_account != issued.destination_account


def test_foreign_tokens_do_not_open() -> None:
    foreign = ServerSecret(bytes(32)).issue("g.server", "x")
    with pytest.raises(DecryptionError):
        SECRET.open_address("g.server", foreign.destination_account)


@pytest.mark.parametrize(
    ("server_address", "destination"),
    [
        ("g.server", "g.other.abc"),
        ("g.server", "g.server"),
        ("g.server", "g.server."),
        ("g.server", "g.serverx.a"),
    ],
)
def test_destinations_without_a_token(server_address: str, destination: str) -> None:
    with pytest.raises(InvalidTokenError):
        token_segment(server_address, destination)


def test_segment_with_unused_zero_bits_decodes() -> None:
    assert decode_token_segment("AQ") == b"\x01"


@pytest.mark.parametrize("segment", ["", "A", "AB==", "a+b/", "AB", "AR", "A.B"])
def test_segments_must_be_canonical_base64url(segment: str) -> None:
    with pytest.raises(InvalidTokenError):
        decode_token_segment(segment)


def test_segment_encoding_round_trips() -> None:
    for length in range(0, 70):
        token = bytes(range(length))
        segment = encode_token_segment(token)
        assert "=" not in segment
        if token:
            assert decode_token_segment(segment) == token


def test_issue_checks_its_inputs() -> None:
    with pytest.raises(EncodeError):
        SECRET.issue("g.server", "é")
    with pytest.raises(EncodeError):
        SECRET.issue("g.server", receipt_nonce=bytes(16))
    with pytest.raises(EncodeError):
        SECRET.issue("g.server", receipt_nonce=bytes(15), receipt_secret=bytes(32))
    with pytest.raises(EncodeError):
        SECRET.issue("g.server", token_nonce=bytes(17))
    with pytest.raises(EncodeError):
        SECRET.issue("not an address")
    assert "42" not in repr(SECRET)
