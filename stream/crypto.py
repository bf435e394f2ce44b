"""STREAM cryptography (RFC 0029 as ilp-protocol-stream 2.7.1 does it).

    encryptionKey  = HMAC-SHA256(key = sharedSecret, "ilp_stream_encryption")
    fulfillmentKey = HMAC-SHA256(key = sharedSecret, "ilp_stream_fulfillment")
    data           = iv (12) · tag (16) · AES-256-GCM(encryptionKey, iv, plaintext), no associated data
    fulfillment    = HMAC-SHA256(key = fulfillmentKey, data)      (data = the encrypted bytes)
    condition      = SHA-256(fulfillment)

`StreamKeys` derives both keys once per shared secret and keeps the AES cipher, so per-packet work is one
AES-GCM operation and at most one HMAC.
"""

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stream.errors import DecryptionError, EncodeError
from stream.oer import BytesLike

ENCRYPTION_KEY_LABEL = b"ilp_stream_encryption"
FULFILLMENT_KEY_LABEL = b"ilp_stream_fulfillment"
KEY_LENGTH = 32
IV_LENGTH = 12
TAG_LENGTH = 16
ENCRYPTION_OVERHEAD = IV_LENGTH + TAG_LENGTH
CONDITION_LENGTH = 32

_CIPHERTEXT_START = ENCRYPTION_OVERHEAD


def hmac_sha256(key: BytesLike, message: BytesLike) -> bytes:
    """HMAC-SHA256 with the key first, as every Interledger derivation uses it."""
    return hmac.digest(key, message, "sha256")


def sha256(data: BytesLike) -> bytes:
    return hashlib.sha256(data).digest()


def fulfillment_to_condition(fulfillment: BytesLike) -> bytes:
    return sha256(fulfillment)


def random_condition() -> bytes:
    """A condition nobody can fulfill: for rate probes and other Prepares meant to be rejected."""
    return os.urandom(CONDITION_LENGTH)


class PacketCipher:
    """AES-256-GCM in the Interledger layout iv · tag · ciphertext (`cryptography` gives ciphertext · tag)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LENGTH:
            raise EncodeError(f"AES-256-GCM key must be {KEY_LENGTH} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "PacketCipher(<key redacted>)"

    def encrypt(self, plaintext: BytesLike, iv: bytes | None = None) -> bytes:
        """Encrypt under a fresh random IV; pass `iv` only to reproduce test vectors."""
        if iv is None:
            iv = os.urandom(IV_LENGTH)
        elif len(iv) != IV_LENGTH:
            raise EncodeError(f"IV must be {IV_LENGTH} bytes, got {len(iv)}")
        sealed = memoryview(self._aead.encrypt(iv, plaintext, None))
        return b"".join((iv, sealed[-TAG_LENGTH:], sealed[:-TAG_LENGTH]))

    def decrypt(self, data: BytesLike) -> bytes:
        if len(data) < ENCRYPTION_OVERHEAD:
            raise DecryptionError(
                f"encrypted data must be at least {ENCRYPTION_OVERHEAD} bytes, got {len(data)}"
            )
        view = memoryview(data)
        sealed = b"".join((view[_CIPHERTEXT_START:], view[IV_LENGTH:_CIPHERTEXT_START]))
        try:
            return self._aead.decrypt(view[:IV_LENGTH], sealed, None)
        except InvalidTag:
            raise DecryptionError(
                "unable to decrypt packet: data was corrupted or encrypted with the wrong key"
            ) from None


class StreamKeys:
    """The keys of one STREAM connection, derived once from its shared secret."""

    __slots__ = ("_cipher", "_encryption_key", "_fulfillment_key")

    def __init__(self, shared_secret: bytes) -> None:
        if len(shared_secret) != KEY_LENGTH:
            raise EncodeError(f"STREAM shared secret must be {KEY_LENGTH} bytes, got {len(shared_secret)}")
        self._encryption_key = hmac_sha256(shared_secret, ENCRYPTION_KEY_LABEL)
        self._fulfillment_key = hmac_sha256(shared_secret, FULFILLMENT_KEY_LABEL)
        self._cipher = PacketCipher(self._encryption_key)

    def __repr__(self) -> str:
        return "StreamKeys(<keys redacted>)"

    @property
    def encryption_key(self) -> bytes:
        return self._encryption_key

    @property
    def fulfillment_key(self) -> bytes:
        return self._fulfillment_key

    def encrypt(self, plaintext: BytesLike, iv: bytes | None = None) -> bytes:
        return self._cipher.encrypt(plaintext, iv)

    def decrypt(self, data: BytesLike) -> bytes:
        return self._cipher.decrypt(data)

    def fulfillment(self, data: BytesLike) -> bytes:
        """The fulfillment of a Prepare carrying `data` (its encrypted STREAM packet)."""
        return hmac_sha256(self._fulfillment_key, data)

    def condition(self, data: BytesLike) -> bytes:
        """The execution condition a sender puts into a fulfillable Prepare carrying `data`."""
        return sha256(hmac_sha256(self._fulfillment_key, data))
