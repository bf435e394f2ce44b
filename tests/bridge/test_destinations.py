from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from bolt11 import Feature, FeatureExtra, FeatureState
from embit import base58, bech32
from embit.script import address_to_scriptpubkey

from spsp_pull.bridge.amounts import DebitUnits, Msats, Rail, Sats
from spsp_pull.bridge.destinations import (
    LightningDestination,
    OnchainDestination,
    check_transfer,
    parse_destination,
    resolve_amount,
)
from spsp_pull.bridge.invoice import InvoicePolicy
from spsp_pull.bridge.network import Network
from spsp_pull.domain.errors import InputError
from tests.bridge import factories

NOW = factories.NOW
ISSUED = int(NOW.timestamp()) - 60


def refused(code: str, text: object, network: Network = Network.MAIN, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_destination(text, network, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value.detail
    assert caught.value.field == "destination"
    assert caught.value.status == 422
    return caught.value


def onchain(text: str, network: Network = Network.MAIN, **kwargs: object) -> OnchainDestination:
    destination = parse_destination(text, network, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert isinstance(destination, OnchainDestination)
    return destination


def lightning(text: str, network: Network = Network.REGTEST, **kwargs: object) -> LightningDestination:
    destination = parse_destination(text, network, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert isinstance(destination, LightningDestination)
    return destination


def segwit(hrp: str, version: int, program: bytes, encoding: bech32.Encoding) -> str:
    text: str = bech32.bech32_encode(encoding, hrp, [version, *bech32.convertbits(program, 8, 5)])
    return text


def regtest_invoice(**kwargs: object) -> str:
    return factories.invoice(Network.REGTEST, timestamp=ISSUED, **kwargs)  # type: ignore[arg-type]


# -- on-chain addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize("network", list(Network))
@pytest.mark.parametrize("kind", factories.ADDRESS_KINDS)
def test_every_address_kind_is_accepted_on_its_own_network(network: Network, kind: str) -> None:
    address = factories.address(network, kind)
    destination = onchain(address, network)
    assert destination.address == address
    assert destination.script_pubkey == address_to_scriptpubkey(address).data
    assert destination.amount_sat is None


@pytest.mark.parametrize("network", [Network.TEST, Network.SIGNET, Network.REGTEST])
def test_legacy_addresses_are_shared_by_the_test_networks(network: Network) -> None:
    for kind in ("p2pkh", "p2sh-p2wpkh"):
        assert onchain(factories.address(Network.TEST, kind), network).address


def test_testnet_and_signet_share_segwit_addresses() -> None:
    address = factories.address(Network.TEST, "p2tr")
    assert onchain(address, Network.SIGNET).address == address


@pytest.mark.parametrize(
    ("made_for", "kind", "checked_on"),
    [
        (Network.MAIN, "p2wpkh", Network.REGTEST),
        (Network.REGTEST, "p2tr", Network.MAIN),
        (Network.TEST, "p2wsh", Network.REGTEST),
        (Network.MAIN, "p2pkh", Network.TEST),
        (Network.TEST, "p2sh-p2wpkh", Network.MAIN),
        (Network.REGTEST, "p2pkh", Network.MAIN),
    ],
)
def test_an_address_of_another_network_is_refused(made_for: Network, kind: str, checked_on: Network) -> None:
    refused("wrong-network", factories.address(made_for, kind), checked_on)


def test_upper_case_bech32_is_normalised_and_mixed_case_refused() -> None:
    address = factories.address(Network.MAIN, "p2wpkh")
    assert onchain(address.upper()).address == address
    mixed = address[:10] + address[10:].upper()
    assert "mix" in refused("invalid-destination", mixed).detail


@pytest.mark.parametrize("kind", factories.ADDRESS_KINDS)
def test_a_typo_is_reported_as_a_bad_checksum(kind: str) -> None:
    address = factories.address(Network.MAIN, kind)
    last = address[-1]
    typo = address[:-1] + ("q" if last != "q" else "p")
    if not address.startswith("bc1"):
        typo = address[:-1] + ("2" if last != "2" else "3")
    refused("bad-checksum", typo)


def test_a_checksum_of_the_wrong_bech32_variant_is_refused() -> None:
    program = hashlib.sha256(b"program").digest()
    refused("bad-checksum", segwit("bc", 0, program[:20], bech32.Encoding.BECH32M))
    refused("bad-checksum", segwit("bc", 1, program, bech32.Encoding.BECH32))


def test_unsupported_witness_programs_are_refused() -> None:
    program = hashlib.sha256(b"program").digest()
    assert (
        "version 2"
        in refused("invalid-destination", segwit("bc", 2, program, bech32.Encoding.BECH32M)).detail
    )
    refused("invalid-destination", segwit("bc", 1, program[:20], bech32.Encoding.BECH32M))
    refused("invalid-destination", segwit("bc", 0, program[:25], bech32.Encoding.BECH32))


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hello", "bc1", "0x52908400098527886E0F7030069857D2E4169EE7", "1" * 9_000, 42, None, b"bc1q"],
)
def test_garbage_is_an_invalid_destination(text: object) -> None:
    refused("invalid-destination", text)


def test_an_unknown_base58_version_is_not_a_bitcoin_address() -> None:
    litecoin_like = base58.encode_check(b"\x30" + bytes(20))
    refused("invalid-destination", litecoin_like)


@pytest.mark.parametrize(
    ("kind", "dust"), [("p2pkh", 546), ("p2sh-p2wpkh", 540), ("p2wpkh", 294), ("p2wsh", 330), ("p2tr", 330)]
)
def test_dust_limits_follow_the_output_type(kind: str, dust: int) -> None:
    destination = onchain(factories.address(Network.MAIN, kind))
    assert destination.dust_limit_sat == dust
    check_transfer(destination, dust * 1000)
    with pytest.raises(InputError) as caught:
        check_transfer(destination, (dust - 1) * 1000)
    assert caught.value.code == "amount-too-small"


# -- BIP 21 ---------------------------------------------------------------------------------------


def test_a_uri_gives_its_address_and_exact_amount() -> None:
    address = factories.address(Network.MAIN, "p2tr")
    destination = onchain(f"bitcoin:{address}?amount=0.00012345&label=March%20salary&message=thanks")
    assert destination == OnchainDestination(address, address_to_scriptpubkey(address).data, 12_345)


def test_an_upper_case_uri_is_understood() -> None:
    address = factories.address(Network.MAIN, "p2wpkh")
    destination = onchain(f"BITCOIN:{address.upper()}?AMOUNT=1")
    assert (destination.address, destination.amount_sat) == (address, 100_000_000)


@pytest.mark.parametrize(
    ("amount", "sat"),
    [
        ("1.", 100_000_000),
        (".5", 50_000_000),
        ("0.000000010", 1),
        ("20999999.99999999", 2_099_999_999_999_999),
    ],
)
def test_uri_amounts_convert_to_satoshis_exactly(amount: str, sat: int) -> None:
    address = factories.address(Network.MAIN, "p2wpkh")
    assert onchain(f"bitcoin:{address}?amount={amount}").amount_sat == sat


@pytest.mark.parametrize(
    "amount", ["0.000000001", "1.123456789", "1e-3", "-1", "0", "1,5", "", ".", "21000001"]
)
def test_uri_amounts_that_are_not_whole_satoshis_are_refused(amount: str) -> None:
    address = factories.address(Network.MAIN, "p2wpkh")
    refused("invalid-destination", f"bitcoin:{address}?amount={amount}")


def test_uri_parameters_follow_bip21() -> None:
    address = factories.address(Network.MAIN, "p2wpkh")
    assert onchain(f"bitcoin:{address}?somethingnew=1").address == address
    refused("invalid-destination", f"bitcoin:{address}?req-somethingnew=1")
    refused("invalid-destination", f"bitcoin:{address}?amount=1&amount=2")
    refused("invalid-destination", "bitcoin:")
    refused("invalid-destination", "bitcoin:?amount=1")


def test_the_address_in_a_uri_is_checked_like_any_other() -> None:
    refused("wrong-network", f"bitcoin:{factories.address(Network.TEST, 'p2wpkh')}?amount=1")
    good = factories.address(Network.MAIN, "p2wpkh")
    refused("bad-checksum", f"bitcoin:{good[:-1]}{'q' if good[-1] != 'q' else 'p'}")


def test_a_unified_uri_resolves_to_lightning_unless_on_chain_is_asked() -> None:
    address = factories.address(Network.REGTEST, "p2wpkh")
    invoice = regtest_invoice(amount_msat=1_000_000)
    uri = f"bitcoin:{address}?amount=0.00001&lightning={invoice}"
    paid = lightning(uri)
    assert (paid.invoice, paid.amount_msat) == (invoice, 1_000_000)
    fallback = onchain(uri, Network.REGTEST, rail=Rail.ONCHAIN)
    assert (fallback.address, fallback.amount_sat) == (address, 1_000)


def test_a_uri_amount_applies_to_an_amountless_invoice_and_must_match_a_fixed_one() -> None:
    amountless = regtest_invoice()
    assert lightning(f"bitcoin:?amount=0.0002&lightning={amountless}").amount_msat == 20_000_000
    fixed = regtest_invoice(amount_msat=1_000_000)
    refused("amount-conflict", f"bitcoin:?amount=0.0002&lightning={fixed}", Network.REGTEST)


def test_a_uri_without_an_address_cannot_be_paid_on_chain() -> None:
    uri = f"bitcoin:?lightning={regtest_invoice()}"
    refused("invalid-destination", uri, Network.REGTEST, rail=Rail.ONCHAIN)


# -- BOLT 11 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("network", list(Network))
def test_an_invoice_gives_hash_amount_expiry_and_network(network: Network) -> None:
    preimage = factories.preimage(network.value)
    text = factories.invoice(network, timestamp=ISSUED, amount_msat=250_000_000, payment_preimage=preimage)
    destination = lightning(text, network)
    assert destination == LightningDestination(
        text,
        hashlib.sha256(preimage).digest(),
        250_000_000,
        datetime.fromtimestamp(ISSUED + 3600, UTC),
        network,
    )


def test_invoice_prefixes_follow_bolt11() -> None:
    assert factories.invoice(Network.MAIN, timestamp=ISSUED).startswith("lnbc1")
    assert factories.invoice(Network.TEST, timestamp=ISSUED, amount_msat=1_000).startswith("lntb10n1")
    assert factories.invoice(Network.SIGNET, timestamp=ISSUED).startswith("lntbs1")
    assert regtest_invoice(amount_msat=1).startswith("lnbcrt10p1")


def test_an_amountless_invoice_has_no_amount() -> None:
    assert lightning(regtest_invoice()).amount_msat is None
    assert lightning(regtest_invoice(amount_msat=1)).amount_msat == 1


def test_lightning_scheme_and_upper_case_are_accepted() -> None:
    text = regtest_invoice(amount_msat=5_000)
    assert lightning(f"lightning:{text}").invoice == text
    assert lightning(text.upper()).invoice == text
    refused("invalid-destination", text[:20] + text[20:].upper(), Network.REGTEST)


@pytest.mark.parametrize(
    ("made_for", "checked_on"),
    [(Network.REGTEST, Network.MAIN), (Network.MAIN, Network.TEST), (Network.SIGNET, Network.TEST)],
)
def test_an_invoice_of_another_network_is_refused(made_for: Network, checked_on: Network) -> None:
    refused("wrong-network", factories.invoice(made_for, timestamp=ISSUED), checked_on)


def test_a_mangled_invoice_has_a_bad_checksum() -> None:
    text = regtest_invoice(amount_msat=5_000)
    refused("bad-checksum", text[:-1] + ("q" if text[-1] != "q" else "p"), Network.REGTEST)


def test_an_expired_invoice_is_refused() -> None:
    text = factories.invoice(Network.REGTEST, timestamp=ISSUED - 7200, expiry=3600)
    refused("invoice-expired", text, Network.REGTEST)


def test_an_invoice_expiring_within_the_margin_is_refused() -> None:
    text = regtest_invoice(expiry=60 + 300)  # five minutes left at NOW
    refused("invoice-expiring", text, Network.REGTEST)
    relaxed = InvoicePolicy(min_remaining=timedelta(minutes=4))
    assert lightning(text, policy=relaxed).expires_at == NOW + timedelta(minutes=5)


def test_an_unknown_required_feature_is_refused_and_an_optional_one_ignored() -> None:
    required = {**factories.STANDARD_FEATURES, FeatureExtra(50): FeatureState.required}
    error = refused("unknown-required-feature", regtest_invoice(features=required), Network.REGTEST)
    assert "100" in error.detail
    optional = {**factories.STANDARD_FEATURES, FeatureExtra(50): FeatureState.supported}
    assert lightning(regtest_invoice(features=optional)).amount_msat is None


def test_required_features_are_judged_against_the_policy() -> None:
    mpp_required = {**factories.STANDARD_FEATURES, Feature.basic_mpp: FeatureState.required}
    text = regtest_invoice(features=mpp_required)
    assert lightning(text).invoice == text
    without_mpp = InvoicePolicy(understood_features=frozenset({8, 14}))
    assert "16" in refused("unknown-required-feature", text, Network.REGTEST, policy=without_mpp).detail


def test_a_sub_millisatoshi_amount_is_refused() -> None:
    text = regtest_invoice(amount_msat=1)  # lnbcrt10p1...
    separator = text.rfind("1")
    assert text[:separator] == "lnbcrt10p"
    data = [bech32.CHARSET.find(char) for char in text[separator + 1 : -6]]
    forged = bech32.bech32_encode(bech32.Encoding.BECH32, "lnbcrt11p", data)
    assert "millisatoshi" in refused("invalid-destination", forged, Network.REGTEST).detail


def test_lnurl_and_other_prefixes_are_not_invoices() -> None:
    assert (
        "LNURL"
        in refused(
            "invalid-destination",
            "lnurl1dp68gurn8ghj7um9wfmxjcm99e3k7mf0v9cxj0m385ekvcenxc6r2c35xvukxefcv5mkvv34x5ekzd3ev56nyd3hxqurzepexejxxepnxscrvwfnv9nxzcn9xq6xyefhvgcxxcmyxymnserxfq5fns",
        ).detail
    )
    refused("invalid-destination", "lnsb1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypq")


def test_the_rail_restricts_what_is_accepted() -> None:
    refused("invalid-destination", regtest_invoice(), Network.REGTEST, rail=Rail.ONCHAIN)
    refused("invalid-destination", factories.address(Network.MAIN, "p2wpkh"), rail=Rail.LIGHTNING)
    assert lightning(regtest_invoice(), rail=Rail.LIGHTNING).network is Network.REGTEST


# -- amounts --------------------------------------------------------------------------------------


def test_a_fixed_destination_amount_wins_and_must_not_be_contradicted() -> None:
    address = factories.address(Network.MAIN, "p2wpkh")
    fixed = onchain(f"bitcoin:{address}?amount=0.001")
    assert resolve_amount(fixed, None) == Sats(100_000)
    assert resolve_amount(fixed, Msats(100_000_000)) == Sats(100_000)
    for contradiction in (Sats(100_001), DebitUnits(500)):
        with pytest.raises(InputError) as caught:
            resolve_amount(fixed, contradiction)
        assert caught.value.code == "amount-conflict"
    invoice = lightning(regtest_invoice(amount_msat=1_234))
    assert resolve_amount(invoice, Msats(1_234)) == Msats(1_234)


def test_an_open_destination_needs_an_amount() -> None:
    open_address = onchain(factories.address(Network.MAIN, "p2wpkh"))
    assert resolve_amount(open_address, DebitUnits(500)) == DebitUnits(500)
    with pytest.raises(InputError) as caught:
        resolve_amount(open_address, None)
    assert caught.value.code == "amount-required"


def test_a_transfer_must_fit_the_invoice() -> None:
    fixed = lightning(regtest_invoice(amount_msat=5_000))
    check_transfer(fixed, 5_000)
    with pytest.raises(InputError) as caught:
        check_transfer(fixed, 4_999)
    assert caught.value.code == "amount-conflict"
    amountless = lightning(regtest_invoice())
    with pytest.raises(InputError) as caught:
        check_transfer(amountless, 999)
    assert caught.value.code == "amount-too-small"
