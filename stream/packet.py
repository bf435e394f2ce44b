"""STREAM packets (RFC 0029 §5.2, as ilp-protocol-stream 2.7.1).

Plaintext: `UInt8 version (1) · UInt8 ilpPacketType · VarUInt sequence · VarUInt prepareAmount ·
VarUInt frameCount · frames`, then optional padding that readers ignore. On the wire the plaintext is
AES-256-GCM encrypted into the ILP packet's data (see `stream.crypto`).
"""

from dataclasses import dataclass

from stream.crypto import ENCRYPTION_OVERHEAD, StreamKeys
from stream.errors import EncodeError, UnknownPacketTypeError, UnsupportedVersionError
from stream.frames import Frame, read_frames, write_frames
from stream.ilp import IlpPacketType
from stream.oer import BytesLike, Reader, Writer

STREAM_VERSION = 1

_ILP_PACKET_TYPES = {member.value: member for member in IlpPacketType}


@dataclass(frozen=True, slots=True)
class StreamPacket:
    """`ilp_packet_type` is the ILP packet carrying this one: a reply echoes the request's `sequence` and
    says 13 inside a Fulfill, 14 inside a Reject. In a Prepare `prepare_amount` is the minimum the sender
    wants delivered; in a reply it is the amount that arrived."""

    sequence: int
    ilp_packet_type: IlpPacketType
    prepare_amount: int
    frames: tuple[Frame, ...] = ()


def _write_packet(writer: Writer, packet: StreamPacket) -> None:
    writer.write_uint8(STREAM_VERSION)
    writer.write_uint8(packet.ilp_packet_type)
    writer.write_var_uint(packet.sequence)
    writer.write_var_uint(packet.prepare_amount)
    write_frames(writer, packet.frames)


def encode(packet: StreamPacket) -> bytes:
    """The unencrypted packet."""
    writer = Writer()
    _write_packet(writer, packet)
    return writer.to_bytes()


def decode(data: BytesLike) -> StreamPacket:
    """Read an unencrypted packet; bytes after the last frame are padding and ignored."""
    reader = Reader(data)
    version = reader.read_uint8()
    if version != STREAM_VERSION:
        raise UnsupportedVersionError(f"unsupported STREAM version {version}")
    raw_type = reader.read_uint8()
    ilp_packet_type = _ILP_PACKET_TYPES.get(raw_type)
    if ilp_packet_type is None:
        raise UnknownPacketTypeError(f"STREAM packet names unknown ILP packet type {raw_type}")
    return StreamPacket(
        sequence=reader.read_var_uint(),
        ilp_packet_type=ilp_packet_type,
        prepare_amount=reader.read_var_uint(),
        frames=read_frames(reader),
    )


def encrypt_packet(
    keys: StreamKeys, packet: StreamPacket, iv: bytes | None = None, pad_to: int | None = None
) -> bytes:
    """The ILP data for `packet`: encrypted under a random IV (or `iv`, for test vectors only).

    With `pad_to` the plaintext is zero-padded so that the encrypted data is exactly `pad_to` bytes long,
    hiding the packet's real size (ilp-protocol-stream's `serializeAndEncrypt(key, padPacketToSize)`).
    """
    writer = Writer()
    _write_packet(writer, packet)
    if pad_to is not None:
        padding = pad_to - ENCRYPTION_OVERHEAD - len(writer)
        if padding < 0:
            raise EncodeError(
                f"packet needs {len(writer) + ENCRYPTION_OVERHEAD} bytes, more than pad_to={pad_to}"
            )
        writer.write(bytes(padding))
    return keys.encrypt(writer.to_bytes(), iv)


def decrypt_packet(keys: StreamKeys, data: BytesLike) -> StreamPacket:
    """Decrypt and read the STREAM packet in an ILP packet's data (`DecryptionError` for foreign data)."""
    return decode(keys.decrypt(data))
