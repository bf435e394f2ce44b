import pytest

from stream import packet
from stream.crypto import ENCRYPTION_OVERHEAD, StreamKeys
from stream.errors import DecryptionError, EncodeError, UnknownPacketTypeError, UnsupportedVersionError
from stream.frames import StreamMoney
from stream.ilp import IlpPacketType
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet
from tests.stream.vectors import Json, cases, load, stream_packet_from_json, unhex

CRYPTO = load("stream_crypto.json")
KEYS = StreamKeys(unhex(CRYPTO["sharedSecret"]))

# --- vectors: stream_crypto.json packets -------------------------------------------------------------------


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_plaintext_encodes_like_js(vector: Json) -> None:
    assert packet.encode(stream_packet_from_json(vector["packet"])).hex() == vector["plaintextHex"]


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_plaintext_decodes_like_js(vector: Json) -> None:
    assert packet.decode(unhex(vector["plaintextHex"])) == stream_packet_from_json(vector["packet"])


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_encrypt_packet_like_js(vector: Json) -> None:
    encrypted = encrypt_packet(KEYS, stream_packet_from_json(vector["packet"]), iv=unhex(vector["iv"]))
    assert encrypted.hex() == vector["encryptedHex"]


@pytest.mark.parametrize("vector", cases("stream_crypto.json", "packets"))
def test_decrypt_packet_like_js(vector: Json) -> None:
    assert decrypt_packet(KEYS, unhex(vector["encryptedHex"])) == stream_packet_from_json(vector["packet"])


def test_tampered_packet_is_refused() -> None:
    with pytest.raises(DecryptionError):
        decrypt_packet(KEYS, unhex(CRYPTO["tamperedLastByte"]["encryptedHex"]))


def test_padded_packet_parses_and_re_encrypts_identically() -> None:
    example = CRYPTO["paddingExample"]
    decrypted = decrypt_packet(KEYS, unhex(example["encryptedHex"]))
    assert decrypted.ilp_packet_type in IlpPacketType
    again = encrypt_packet(KEYS, decrypted, iv=unhex(example["iv"]), pad_to=example["length"])
    assert again.hex() == example["encryptedHex"]


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_padding_is_ignored_and_sizes_are_exact() -> None:
    money = StreamPacket(5, IlpPacketType.PREPARE, 990, (StreamMoney(1, 1000),))
    plaintext = packet.encode(money)
    assert packet.decode(plaintext + bytes(40)) == money
    assert packet.decode(plaintext + b"junk") == money
    padded = encrypt_packet(KEYS, money, pad_to=len(plaintext) + ENCRYPTION_OVERHEAD)
    assert len(padded) == len(plaintext) + ENCRYPTION_OVERHEAD
    assert len(encrypt_packet(KEYS, money, pad_to=500)) == 500
    with pytest.raises(EncodeError):
        encrypt_packet(KEYS, money, pad_to=len(plaintext) + ENCRYPTION_OVERHEAD - 1)


def test_version_and_ilp_packet_type_are_checked() -> None:
    empty = packet.encode(StreamPacket(0, IlpPacketType.PREPARE, 0))
    assert empty.hex() == "010c010001000100"
    with pytest.raises(UnsupportedVersionError):
        packet.decode(b"\x02" + empty[1:])
    for ilp_type in (0, 11, 15):
        with pytest.raises(UnknownPacketTypeError):
            packet.decode(empty[:1] + bytes((ilp_type,)) + empty[2:])


def test_decoded_type_is_the_enum() -> None:
    decoded = packet.decode(unhex("010d010001000100"))
    assert decoded.ilp_packet_type is IlpPacketType.FULFILL


def test_encode_refuses_out_of_range_values() -> None:
    with pytest.raises(EncodeError):
        packet.encode(StreamPacket(2**64, IlpPacketType.PREPARE, 0))
    with pytest.raises(EncodeError):
        packet.encode(StreamPacket(0, IlpPacketType.PREPARE, -1))
