"""On-chain addresses: validation against one network, the output script, and the dust limit.

embit does the decoding (base58check, bech32 and bech32m); this module adds what embit leaves to its
callers: the network check (embit accepts any known prefix), telling a checksum typo from garbage, and a
final re-encode so that only the canonical form of an address for this network is accepted.
"""

from __future__ import annotations

from embit import base58
from embit.base import EmbitError
from embit.hashes import double_sha256
from embit.networks import NETWORKS
from embit.script import Script, address_to_scriptpubkey

from spsp_pull.bridge.checksum import Checksum, bech32_checksum
from spsp_pull.bridge.network import Network
from spsp_pull.domain.errors import InputError

_MAX_LENGTH = 90  # the bech32 limit; base58 addresses are shorter still
_BECH32_HRPS = frozenset(network.bech32_hrp for network in Network)

# Dust at Bitcoin Core's default dust relay fee (3 sat/vB): an output below it is not relayed.
_DUST_LIMIT_SAT = {"p2pkh": 546, "p2sh": 540, "p2wpkh": 294, "p2wsh": 330, "p2tr": 330}


def _invalid(code: str, detail: str) -> InputError:
    return InputError(code, detail, field="destination")


def parse_address(text: str, network: Network) -> tuple[str, bytes]:
    """The canonical address (bech32 in lower case) and its scriptPubKey; raises InputError otherwise.

    Accepts P2PKH, P2SH, P2WPKH, P2WSH and P2TR. Testnet, signet and regtest share their base58 prefixes,
    so a legacy address of any of the three is accepted for the others.
    """
    candidate = text.strip()
    if not candidate or len(candidate) > _MAX_LENGTH or not candidate.isascii():
        raise _invalid("invalid-destination", "not a Bitcoin address")
    lowered = candidate.lower()
    separator = lowered.rfind("1")
    if separator > 0 and lowered[:separator] in _BECH32_HRPS:
        address = _check_segwit(candidate, lowered[:separator], network)
    else:
        address = _check_base58(candidate, network)
    try:
        script = address_to_scriptpubkey(address)
    except (EmbitError, ValueError):
        raise _invalid("invalid-destination", "unsupported or malformed address") from None
    if script is None or script.script_type() not in _DUST_LIMIT_SAT:
        raise _invalid("invalid-destination", "unsupported address type")
    if script.address(NETWORKS[network.value]) != address:
        raise _invalid("invalid-destination", "not the canonical encoding of an address")
    return address, script.data


def dust_limit_sat(script_pubkey: bytes) -> int:
    """The smallest output value, in satoshis, that the network relays for this script."""
    script_type = Script(script_pubkey).script_type()
    if script_type not in _DUST_LIMIT_SAT:
        raise ValueError("not a standard payment script")
    return _DUST_LIMIT_SAT[script_type]


def _check_segwit(candidate: str, hrp: str, network: Network) -> str:
    if candidate != candidate.lower() and candidate != candidate.upper():
        raise _invalid("invalid-destination", "a bech32 address must not mix upper and lower case")
    address = candidate.lower()
    if hrp != network.bech32_hrp:
        raise _invalid("wrong-network", f"a {hrp}1… address cannot be paid on the {network} network")
    checksum, values = bech32_checksum(hrp, address[len(hrp) + 1 :], what="address")
    version = values[0]
    if checksum is not (Checksum.BECH32 if version == 0 else Checksum.BECH32M):
        raise _invalid("bad-checksum", f"witness version {version} needs the other bech32 checksum variant")
    if 1 < version <= 16:
        raise _invalid("invalid-destination", f"witness version {version} addresses are not supported")
    return address


def _check_base58(candidate: str, network: Network) -> str:
    try:
        raw = base58.decode(candidate)
    except ValueError:
        raise _invalid("invalid-destination", "not a Bitcoin address") from None
    if len(raw) != 25:
        raise _invalid("invalid-destination", "not a Bitcoin address")
    if double_sha256(raw[:21])[:4] != raw[21:]:
        raise _invalid("bad-checksum", "the address checksum does not match (a typo?)")
    version = raw[:1]
    if version not in network.base58_prefixes:
        if any(version in other.base58_prefixes for other in Network):
            raise _invalid("wrong-network", f"the address belongs to another network than {network}")
        raise _invalid("invalid-destination", "unknown address version")
    return candidate
