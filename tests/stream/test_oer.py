from collections.abc import Callable

import pytest

from stream.errors import (
    DecodeError,
    EncodeError,
    InvalidTextError,
    NonCanonicalLengthError,
    TrailingDataError,
    TruncatedError,
    VarUIntError,
)
from stream.oer import U64_MAX, Reader, Writer, encode_length_prefix, encode_var_octet_string, encode_var_uint
from tests.stream.vectors import Json, cases, unhex

# --- vectors: oer.json ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", cases("oer.json", "varuint", id_key="value"))
def test_var_uint_encodes_like_js(vector: Json) -> None:
    assert encode_var_uint(int(vector["value"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", cases("oer.json", "varuint", id_key="value"))
def test_var_uint_decodes_like_js(vector: Json) -> None:
    reader = Reader(unhex(vector["hex"]))
    assert reader.read_var_uint() == int(vector["value"])
    assert reader.at_end()


@pytest.mark.parametrize("vector", cases("oer.json", "lengthPrefix", id_key="length"))
def test_length_prefix_encodes_like_js(vector: Json) -> None:
    assert encode_length_prefix(vector["length"]).hex() == vector["prefixHex"]


@pytest.mark.parametrize("vector", cases("oer.json", "lengthPrefix", id_key="length"))
def test_length_prefix_decodes_like_js(vector: Json) -> None:
    reader = Reader(unhex(vector["prefixHex"]))
    assert reader.read_length_prefix() == vector["length"]
    assert reader.at_end()


_EXPECTED_ERROR = {
    "VarUInt with length 0": VarUIntError,
    "length prefix long form encoding 0 (non-canonical)": NonCanonicalLengthError,
    "length prefix long form encoding 127 (must be short form)": NonCanonicalLengthError,
    "length prefix 128 in 2 bytes with leading zero (non-canonical)": NonCanonicalLengthError,
    "VarUInt of 9 bytes (> UInt64) in a generic field": VarUIntError,
    "truncated: VarUInt says 4 bytes, 1 present": TruncatedError,
}


@pytest.mark.parametrize("vector", cases("oer.json", "invalidDecodes", id_key="what"))
def test_invalid_encodings_are_rejected(vector: Json) -> None:
    expected = _EXPECTED_ERROR[vector["what"]]
    data = unhex(vector["fullHex"])
    with pytest.raises(expected):
        Reader(data).read_var_uint()
    if expected is NonCanonicalLengthError:
        with pytest.raises(expected):
            Reader(data).read_var_octet_string()


@pytest.mark.parametrize("vector", cases("oer.json", "nonMinimalVarUIntAcceptedByJs", id_key="hex"))
def test_leading_zero_var_uints_are_accepted_like_js(vector: Json) -> None:
    assert Reader(unhex(vector["hex"])).read_var_uint() == int(vector["jsDecodes"])


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_saturating_var_uint_reads_long_values_as_max() -> None:
    reader = Reader(unhex("09010000000000000000" + "0102"))
    assert reader.read_var_uint_saturating() == U64_MAX
    assert reader.read_var_uint() == 2


def test_saturating_var_uint_reads_normal_values_and_rejects_empty() -> None:
    assert Reader(unhex("020100")).read_var_uint_saturating() == 256
    with pytest.raises(VarUIntError):
        Reader(unhex("00")).read_var_uint_saturating()
    with pytest.raises(TruncatedError):
        Reader(unhex("0901")).read_var_uint_saturating()


def test_fixed_size_integers_are_big_endian() -> None:
    reader = Reader(unhex("01" + "0203" + "04050607" + "08090a0b0c0d0e0f"))
    assert reader.read_uint8() == 0x01
    assert reader.read_uint16() == 0x0203
    assert reader.read_uint32() == 0x04050607
    assert reader.read_uint64() == 0x08090A0B0C0D0E0F
    assert reader.at_end()
    with pytest.raises(TruncatedError):
        reader.read_uint8()


def test_writer_mirrors_reader() -> None:
    writer = Writer()
    writer.write_uint8(1)
    writer.write_uint16(0x0203)
    writer.write_uint32(0x04050607)
    writer.write_uint64(U64_MAX)
    writer.write_var_uint(300)
    writer.write_var_octet_string(b"abc")
    writer.write_var_utf8("é")
    writer.write_var_ascii("ok")
    data = writer.to_bytes()
    assert len(writer) == len(data)
    reader = Reader(memoryview(bytearray(data)))
    assert [reader.read_uint8(), reader.read_uint16(), reader.read_uint32(), reader.read_uint64()] == [
        1,
        0x0203,
        0x04050607,
        U64_MAX,
    ]
    assert reader.read_var_uint() == 300
    assert reader.read_var_octet_string() == b"abc"
    assert reader.read_var_utf8() == "é"
    assert reader.read_var_ascii() == "ok"
    reader.expect_end()


def test_nested_writer_becomes_a_var_octet_string() -> None:
    inner = Writer()
    inner.write(bytes(200))
    outer = Writer()
    outer.write_uint8(7)
    outer.write_nested(inner)
    assert outer.to_bytes() == b"\x07" + encode_var_octet_string(bytes(200))
    assert outer.to_bytes()[1:3] == b"\x81\xc8"


def test_reader_errors() -> None:
    with pytest.raises(TrailingDataError):
        Reader(b"\x00").expect_end()
    with pytest.raises(TruncatedError):
        Reader(b"\x05abc").read_var_octet_string()
    with pytest.raises(TruncatedError):
        Reader(b"\x82\x01").read_length_prefix()
    with pytest.raises(InvalidTextError):
        Reader(b"\x01\xff").read_var_utf8()
    with pytest.raises(InvalidTextError):
        Reader(b"\x01\x80").read_var_ascii()
    assert Reader(b"\x02a\xff").read_var_utf8(lenient=True) == "a\ufffd"


def test_reader_views_do_not_copy() -> None:
    reader = Reader(b"\x03abcdef")
    view = reader.read_var_octet_string_view()
    assert isinstance(view, memoryview)
    assert bytes(view) == b"abc"
    assert reader.position == 4
    assert reader.remaining == 3


def test_skip_var_octet_string() -> None:
    reader = Reader(b"\x02ab\x01c")
    reader.skip_var_octet_string()
    assert reader.read_var_octet_string() == b"c"


@pytest.mark.parametrize("value", [-1, U64_MAX + 1])
def test_out_of_range_var_uint_is_refused(value: int) -> None:
    with pytest.raises(EncodeError):
        encode_var_uint(value)


@pytest.mark.parametrize(
    ("method", "value"),
    [
        (Writer.write_uint8, 256),
        (Writer.write_uint16, 65536),
        (Writer.write_uint32, 2**32),
        (Writer.write_uint64, 2**64),
        (Writer.write_uint64, -1),
    ],
)
def test_out_of_range_fixed_integers_are_refused(method: Callable[[Writer, int], None], value: int) -> None:
    with pytest.raises(EncodeError):
        method(Writer(), value)


def test_non_ascii_is_refused_where_ascii_is_required() -> None:
    with pytest.raises(EncodeError):
        Writer().write_var_ascii("é")
    with pytest.raises(EncodeError):
        Writer().write_var_utf8("\ud800")


def test_decode_errors_are_value_errors() -> None:
    assert issubclass(DecodeError, ValueError)
    assert issubclass(EncodeError, ValueError)
