"""The bech32 / bech32m checksum shared by segwit addresses and BOLT 11 invoices.

A string whose characters could be bech32 but whose checksum matches neither variant is a typo
(`bad-checksum`); anything else that fails is not bech32 at all (`invalid-destination`).
"""

from __future__ import annotations

from enum import Enum

from embit import bech32

from spsp_pull.domain.errors import InputError


class Checksum(Enum):
    BECH32 = "bech32"  # BIP 173: segwit v0, BOLT 11
    BECH32M = "bech32m"  # BIP 350: segwit v1+


def bech32_checksum(hrp: str, data_part: str, *, what: str) -> tuple[Checksum, list[int]]:
    """The checksum variant of lower-case `hrp` + "1" + `data_part`, and its 5-bit values (checksum
    included); `what` names the thing in error details ("address", "invoice")."""
    if len(data_part) < 7 or any(char not in bech32.CHARSET for char in data_part):
        raise InputError("invalid-destination", f"not a bech32 {what}", field="destination")
    values = [bech32.CHARSET.find(char) for char in data_part]
    variant = bech32.bech32_verify_checksum(hrp, values)
    if variant == bech32.Encoding.BECH32:
        return Checksum.BECH32, values
    if variant == bech32.Encoding.BECH32M:
        return Checksum.BECH32M, values
    raise InputError("bad-checksum", f"the {what} checksum does not match (a typo?)", field="destination")
