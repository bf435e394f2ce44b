"""IL-DCP (RFC 0031, as ilp-protocol-ildcp 2.2.3): a child learns its ILP address and asset from its parent.

Request: an amount-0 Prepare to `peer.config` with condition sha256(32 zero bytes) and no data.
Response: a Fulfill with 32 zero bytes as fulfillment and data
`VarOctetString(clientAddress) · UInt8 assetScale · VarOctetString(assetCode)`.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from stream.address import decode_address, is_valid_address
from stream.errors import EncodeError, InvalidFieldError, UnexpectedPacketTypeError
from stream.ilp import Fulfill, Prepare, decode
from stream.oer import BytesLike, Reader, Writer

ILDCP_DESTINATION = "peer.config"
ILDCP_FULFILLMENT = bytes(32)
ILDCP_CONDITION = hashlib.sha256(ILDCP_FULFILLMENT).digest()


@dataclass(frozen=True, slots=True)
class IldcpResponse:
    client_address: str
    asset_scale: int
    asset_code: str


def request_prepare(expires_at: datetime) -> Prepare:
    """The IL-DCP request; JS clients use an expiry of now + 60 s."""
    return Prepare(
        amount=0, expires_at=expires_at, execution_condition=ILDCP_CONDITION, destination=ILDCP_DESTINATION
    )


def is_ildcp_request(prepare: Prepare) -> bool:
    """Whether a parent should answer `prepare` with IL-DCP (mini-accounts looks at the destination only)."""
    return prepare.destination == ILDCP_DESTINATION


def encode_response_data(response: IldcpResponse) -> bytes:
    if not is_valid_address(response.client_address):
        raise EncodeError(f"client_address is not a valid ILP address: {response.client_address[:64]!r}")
    writer = Writer()
    writer.write_var_ascii(response.client_address)
    writer.write_uint8(response.asset_scale)
    writer.write_var_utf8(response.asset_code)
    return writer.to_bytes()


def decode_response_data(data: BytesLike) -> IldcpResponse:
    reader = Reader(data)
    response = IldcpResponse(
        client_address=decode_address(reader.read_var_octet_string_view()),
        asset_scale=reader.read_uint8(),
        asset_code=reader.read_var_utf8(),
    )
    reader.expect_end()
    return response


def response_fulfill(response: IldcpResponse) -> Fulfill:
    return Fulfill(fulfillment=ILDCP_FULFILLMENT, data=encode_response_data(response))


def parse_response(fulfill: Fulfill) -> IldcpResponse:
    """Read an IL-DCP answer, checking the all-zero fulfillment as the JS client does."""
    if fulfill.fulfillment != ILDCP_FULFILLMENT:
        raise InvalidFieldError("IL-DCP response fulfillment must be 32 zero bytes")
    return decode_response_data(fulfill.data)


def decode_response(data: BytesLike) -> IldcpResponse:
    """Parse the serialized ILP reply to an IL-DCP request; a Reject is reported as unexpected."""
    packet = decode(data)
    if not isinstance(packet, Fulfill):
        raise UnexpectedPacketTypeError(f"IL-DCP request was answered with {type(packet).__name__}")
    return parse_response(packet)
