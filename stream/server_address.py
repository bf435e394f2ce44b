"""Connection addresses and shared secrets as the JS STREAM server (ilp-protocol-stream 2.7.1) derives them.

    tokenPlain   = tokenNonce (18) · VOS(connectionTag) · VOS(receiptNonce, 0|16) · VOS(receiptSecret, 0|32)
    token        = iv (12) · tag (16) · AES-256-GCM(key = serverSecret, iv, tokenPlain)
    address      = serverAddress + "." + base64url(token), unpadded
    sharedSecret = HMAC(key = HMAC(key = serverSecret, "ilp_stream_shared_secret"), token)

Clients treat the address as opaque, so this scheme is a choice, not a requirement; following it lets a test
decrypt JS-issued tokens and reproduce JS-issued SPSP responses. The token segment of an incoming Prepare's
destination identifies the connection; a token that does not decrypt under the server secret is foreign.
"""

import base64
import binascii
import os
import re
from dataclasses import dataclass, field

from stream.address import is_valid_address
from stream.crypto import PacketCipher, hmac_sha256
from stream.errors import EncodeError, InvalidFieldError, InvalidTokenError
from stream.oer import BytesLike, Reader, Writer

SHARED_SECRET_LABEL = b"ilp_stream_shared_secret"
TOKEN_NONCE_LENGTH = 18
RECEIPT_NONCE_LENGTH = 16
RECEIPT_SECRET_LENGTH = 32

_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ConnectionToken:
    """What a connection token carries. The receipt fields are both empty unless receipts are enabled."""

    token_nonce: bytes
    connection_tag: str
    receipt_nonce: bytes = b""
    receipt_secret: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class ConnectionCredentials:
    """What an SPSP response hands to a client: `destination_account` and `shared_secret`."""

    destination_account: str
    shared_secret: bytes = field(repr=False)
    token: bytes


def encode_token_segment(token: bytes) -> str:
    """base64url without padding, as the JS server writes the token into the address."""
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def decode_token_segment(segment: str) -> bytes:
    """The token of an address segment; only the canonical unpadded base64url form is accepted."""
    if _TOKEN_SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise InvalidTokenError(f"not an unpadded base64url token: {segment[:32]!r}")
    try:
        token = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise InvalidTokenError(f"not an unpadded base64url token: {segment[:32]!r}") from None
    # Unused low bits of the last character would let several segments name one token.
    if encode_token_segment(token) != segment:
        raise InvalidTokenError(f"non-canonical base64url token: {segment[:32]!r}")
    return token


def token_segment(server_address: str, destination: str) -> str:
    """The connection id: the first segment of `destination` after `server_address`."""
    prefix = server_address + "."
    if not destination.startswith(prefix):
        raise InvalidTokenError(f"{destination[:64]!r} is not below {server_address!r}")
    segment = destination[len(prefix) :].split(".", 1)[0]
    if not segment:
        raise InvalidTokenError(f"{destination[:64]!r} has no connection id")
    return segment


def _check_length(value: bytes, allowed: tuple[int, ...], what: str, error: type[ValueError]) -> None:
    if len(value) not in allowed:
        raise error(f"{what} must be {' or '.join(map(str, allowed))} bytes, got {len(value)}")


class ServerSecret:
    """A STREAM server's secret, with the cipher and HMAC key derived from it once."""

    __slots__ = ("_cipher", "_shared_secret_key")

    def __init__(self, server_secret: bytes) -> None:
        self._cipher = PacketCipher(server_secret)
        self._shared_secret_key = hmac_sha256(server_secret, SHARED_SECRET_LABEL)

    def __repr__(self) -> str:
        return "ServerSecret(<redacted>)"

    def shared_secret(self, token: BytesLike) -> bytes:
        return hmac_sha256(self._shared_secret_key, token)

    def issue(
        self,
        server_address: str,
        connection_tag: str = "",
        *,
        receipt_nonce: bytes = b"",
        receipt_secret: bytes = b"",
        token_nonce: bytes | None = None,
        iv: bytes | None = None,
    ) -> ConnectionCredentials:
        """A fresh address and shared secret for a new connection, carrying `connection_tag` (ASCII).

        `token_nonce` and `iv` are random unless given (only to reproduce test vectors).
        """
        if bool(receipt_nonce) != bool(receipt_secret):
            raise EncodeError("receipt_nonce and receipt_secret must be given together")
        if token_nonce is None:
            token_nonce = os.urandom(TOKEN_NONCE_LENGTH)
        _check_length(token_nonce, (TOKEN_NONCE_LENGTH,), "token nonce", EncodeError)
        _check_length(receipt_nonce, (0, RECEIPT_NONCE_LENGTH), "receipt nonce", EncodeError)
        _check_length(receipt_secret, (0, RECEIPT_SECRET_LENGTH), "receipt secret", EncodeError)
        plaintext = Writer()
        plaintext.write(token_nonce)
        plaintext.write_var_ascii(connection_tag)
        plaintext.write_var_octet_string(receipt_nonce)
        plaintext.write_var_octet_string(receipt_secret)
        token = self._cipher.encrypt(plaintext.to_bytes(), iv)
        destination = f"{server_address}.{encode_token_segment(token)}"
        if not is_valid_address(destination):
            raise EncodeError(f"server address does not make a valid ILP address: {server_address[:64]!r}")
        return ConnectionCredentials(destination, self.shared_secret(token), token)

    def open_token(self, token: BytesLike) -> ConnectionToken:
        """Decrypt a token issued with this secret (`DecryptionError` for any other bytes)."""
        reader = Reader(self._cipher.decrypt(token))
        opened = ConnectionToken(
            token_nonce=reader.read_bytes(TOKEN_NONCE_LENGTH),
            connection_tag=reader.read_var_ascii(),
            receipt_nonce=reader.read_var_octet_string(),
            receipt_secret=reader.read_var_octet_string(),
        )
        reader.expect_end()
        _check_length(opened.receipt_nonce, (0, RECEIPT_NONCE_LENGTH), "receipt nonce", InvalidFieldError)
        _check_length(opened.receipt_secret, (0, RECEIPT_SECRET_LENGTH), "receipt secret", InvalidFieldError)
        return opened

    def open_address(self, server_address: str, destination: str) -> tuple[bytes, ConnectionToken]:
        """The token in `destination` and what it carries; any `DecodeError` means "not our connection"."""
        token = decode_token_segment(token_segment(server_address, destination))
        return token, self.open_token(token)
