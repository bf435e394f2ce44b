import pytest

from stream.crypto import (
    ENCRYPTION_OVERHEAD,
    PacketCipher,
    StreamKeys,
    fulfillment_to_condition,
    random_condition,
)
from stream.errors import DecryptionError, EncodeError
from tests.stream.vectors import Json, cases, load, unhex

CRYPTO = load("stream_crypto.json")
KEYS = StreamKeys(unhex(CRYPTO["sharedSecret"]))

# --- vectors: stream_crypto.json ---------------------------------------------------------------------------


def test_keys_derive_like_js() -> None:
    assert KEYS.encryption_key.hex() == CRYPTO["encryptionKey"]
    assert KEYS.fulfillment_key.hex() == CRYPTO["fulfillmentKey"]


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_encrypts_like_js(vector: Json) -> None:
    encrypted = KEYS.encrypt(unhex(vector["plaintextHex"]), iv=unhex(vector["iv"]))
    assert encrypted.hex() == vector["encryptedHex"]


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_decrypts_like_js(vector: Json) -> None:
    assert KEYS.decrypt(unhex(vector["encryptedHex"])).hex() == vector["plaintextHex"]


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_fulfillment_and_condition_like_js(vector: Json) -> None:
    data = unhex(vector["encryptedHex"])
    assert KEYS.fulfillment(data).hex() == vector["fulfillment"]
    assert KEYS.condition(data).hex() == vector["condition"]
    assert fulfillment_to_condition(unhex(vector["fulfillment"])).hex() == vector["condition"]


def test_tampered_last_byte_fails_to_decrypt() -> None:
    with pytest.raises(DecryptionError):
        KEYS.decrypt(unhex(CRYPTO["tamperedLastByte"]["encryptedHex"]))


def test_padding_example_decrypts() -> None:
    example = CRYPTO["paddingExample"]
    data = unhex(example["encryptedHex"])
    assert len(data) == example["length"]
    assert len(KEYS.decrypt(data)) == example["length"] - ENCRYPTION_OVERHEAD


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_random_iv_round_trip() -> None:
    first = KEYS.encrypt(b"hello")
    second = KEYS.encrypt(memoryview(b"hello"))
    assert first != second
    assert len(first) == len(b"hello") + ENCRYPTION_OVERHEAD
    assert KEYS.decrypt(first) == KEYS.decrypt(bytearray(second)) == b"hello"


def test_wrong_key_and_short_data_fail_as_decryption_errors() -> None:
    other = StreamKeys(bytes(32))
    with pytest.raises(DecryptionError):
        other.decrypt(KEYS.encrypt(b"x"))
    for length in (0, 1, ENCRYPTION_OVERHEAD - 1):
        with pytest.raises(DecryptionError):
            KEYS.decrypt(bytes(length))
    assert KEYS.decrypt(KEYS.encrypt(b"")) == b""


def test_sizes_are_checked() -> None:
    with pytest.raises(EncodeError):
        StreamKeys(bytes(31))
    with pytest.raises(EncodeError):
        PacketCipher(bytes(16))
    with pytest.raises(EncodeError):
        KEYS.encrypt(b"x", iv=bytes(11))


def test_secrets_stay_out_of_repr() -> None:
    assert CRYPTO["encryptionKey"] not in repr(KEYS)
    assert "redacted" in repr(KEYS)
    assert "redacted" in repr(PacketCipher(bytes(32)))


def test_random_conditions_differ() -> None:
    assert len(random_condition()) == 32
    assert random_condition() != random_condition()
