from collections.abc import Callable

import pytest

from stream import ildcp, ilp
from stream.crypto import sha256
from stream.errors import EncodeError, InvalidAddressError, InvalidFieldError, UnexpectedPacketTypeError
from stream.ildcp import IldcpResponse
from tests.stream.vectors import Json, iso, unhex

Vectors = Callable[[str], Json]


@pytest.fixture
def vector(vectors: Vectors) -> Json:
    return vectors("ildcp.json")


def _response(vector: Json) -> IldcpResponse:
    fields = vector["response"]
    return IldcpResponse(fields["clientAddress"], fields["assetScale"], fields["assetCode"])


def test_condition_is_sha256_of_zeros(vector: Json) -> None:
    assert ildcp.ILDCP_CONDITION.hex() == vector["condition"]
    assert sha256(bytes(32)) == ildcp.ILDCP_CONDITION


def test_request_encodes_like_js(vector: Json) -> None:
    request = ildcp.request_prepare(iso(vector["request"]["expiresAt"]))
    assert ilp.encode(request).hex() == vector["request"]["hex"]


def test_request_decodes_and_is_recognised(vector: Json) -> None:
    prepare = ilp.decode_prepare(unhex(vector["request"]["hex"]))
    assert prepare == ildcp.request_prepare(iso(vector["request"]["expiresAt"]))
    assert ildcp.is_ildcp_request(prepare)


def test_response_data_encodes_like_js(vector: Json) -> None:
    assert ildcp.encode_response_data(_response(vector)).hex() == vector["response"]["dataHex"]


def test_response_fulfill_encodes_like_js(vector: Json) -> None:
    assert ilp.encode(ildcp.response_fulfill(_response(vector))).hex() == vector["response"]["hex"]


def test_response_decodes_like_js(vector: Json) -> None:
    decoded = vector["response"]["decoded"]
    expected = IldcpResponse(decoded["clientAddress"], decoded["assetScale"], decoded["assetCode"])
    assert ildcp.decode_response(unhex(vector["response"]["hex"])) == expected
    assert ildcp.decode_response_data(unhex(vector["response"]["dataHex"])) == expected


def test_error_response_example_round_trips(vector: Json) -> None:
    data = unhex(vector["errorResponseExample"]["hex"])
    reject = ilp.decode(data)
    assert reject == ilp.Reject("F00", "private.moneyd", "packet is not an IL-DCP request.")
    assert ilp.encode(reject) == data
    with pytest.raises(UnexpectedPacketTypeError):
        ildcp.decode_response(data)


def test_other_prepares_are_not_ildcp(vector: Json) -> None:
    other = ilp.Prepare(0, iso(vector["request"]["expiresAt"]), ildcp.ILDCP_CONDITION, "peer.configx")
    assert not ildcp.is_ildcp_request(other)


def test_response_requires_zero_fulfillment(vector: Json) -> None:
    fulfill = ildcp.response_fulfill(_response(vector))
    with pytest.raises(InvalidFieldError):
        ildcp.parse_response(ilp.Fulfill(b"\x01" * 32, fulfill.data))


def test_response_requires_a_valid_client_address() -> None:
    with pytest.raises(EncodeError):
        ildcp.encode_response_data(IldcpResponse("nope", 9, "XRP"))
    data = ildcp.encode_response_data(IldcpResponse("g.nope", 9, "XRP")).replace(b"g.nope", b"x.nope")
    with pytest.raises(InvalidAddressError):
        ildcp.decode_response_data(data)
