from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.bridge.amounts import Amount, DebitUnits, Msats, Rail, Sats
from spsp_pull.bridge.quote import Asset, FeePolicy, Quote, quote
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
USD = Asset("USD", 2)
NO_FEES = FeePolicy()


def offer(
    amount: Amount,
    *,
    rail: Rail = Rail.ONCHAIN,
    asset: Asset = USD,
    rate: Decimal | str = "50000",
    fees: FeePolicy = NO_FEES,
) -> Quote:
    return quote(amount, rail=rail, asset=asset, rate=Decimal(rate), fees=fees, now=NOW, ttl=TTL)


def refused(code: str, amount: Amount, **kwargs: object) -> None:
    with pytest.raises(InputError) as caught:
        offer(amount, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.field == "amount"


def value_in_units(msat: int, asset: Asset, rate: Decimal) -> Fraction:
    per_major: int = 10**asset.scale
    return Fraction(msat * per_major) * Fraction(rate) / 10**11


def test_a_price_side_amount_buys_the_bitcoin_it_is_worth() -> None:
    hundred_dollars = offer(DebitUnits(10_000))
    assert hundred_dollars == Quote(Rail.ONCHAIN, USD, 10_000, 200_000_000, 0, Decimal("50000"), NOW + TTL)
    assert hundred_dollars.transfer_sat == 200_000


def test_a_transfer_side_amount_costs_what_it_is_worth() -> None:
    assert offer(Sats(200_000)).debit_units == 10_000
    assert offer(Msats(200_000_000), rail=Rail.LIGHTNING).debit_units == 10_000


def test_fractions_round_against_nobody_but_the_transfer() -> None:
    # One cent at 30,000.50 USD/BTC is worth 33,332.77 msat.
    on_chain = offer(DebitUnits(1), rate="30000.5")
    assert (on_chain.transfer_msat, on_chain.debit_units) == (33_000, 1)
    over_lightning = offer(DebitUnits(1), rate="30000.5", rail=Rail.LIGHTNING)
    assert (over_lightning.transfer_msat, over_lightning.debit_units) == (33_332, 1)
    # One satoshi is worth 0.05 cents: it still costs a whole cent.
    assert offer(Sats(1)).debit_units == 1


def test_fees_are_paid_from_the_price_side_amount() -> None:
    fees = FeePolicy(fixed_msat=1_000_000, ppm=5_000)
    charged = offer(DebitUnits(10_000), fees=fees)
    assert charged.transfer_msat == 198_009_000
    assert charged.fee_msat == 1_000_000 + 990_045
    assert charged.debit_units == 10_000
    on_top = offer(Sats(100_000), fees=fees)
    assert (on_top.transfer_msat, on_top.fee_msat, on_top.debit_units) == (100_000_000, 1_500_000, 5_075)


def test_a_bitcoin_denominated_pointer_only_changes_scale() -> None:
    sats = Asset("BTC", 8)
    assert offer(DebitUnits(12_345), asset=sats, rate="1").transfer_sat == 12_345
    msat = Asset("BTC", 11)
    assert offer(DebitUnits(1), asset=msat, rate="1", rail=Rail.LIGHTNING).transfer_msat == 1
    assert offer(Msats(1), asset=msat, rate="1", rail=Rail.LIGHTNING).debit_units == 1


def test_amounts_outside_the_u64_range_are_refused() -> None:
    refused("amount-out-of-range", DebitUnits(0))
    refused("amount-out-of-range", DebitUnits(U64_MAX + 1))
    refused("amount-out-of-range", Sats(0))
    refused("amount-out-of-range", Sats(21_000_000 * 10**8), asset=Asset("XYZ", 18))


def test_an_amount_that_cannot_cover_its_fee_is_too_small() -> None:
    refused("amount-too-small", DebitUnits(1), fees=FeePolicy(fixed_msat=1_000_000))
    refused("amount-too-small", DebitUnits(1), asset=Asset("BTC", 11), rate="1")


def test_on_chain_transfers_are_whole_satoshis() -> None:
    with pytest.raises(InputError) as caught:
        offer(Msats(1_500))
    assert caught.value.code == "invalid-amount"
    with pytest.raises(ValueError, match="whole"):
        _ = offer(Msats(1_500), rail=Rail.LIGHTNING).transfer_sat


@pytest.mark.parametrize("rate", ["0", "-1", "NaN", "Infinity"])
def test_a_rate_must_be_positive_and_finite(rate: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        offer(DebitUnits(100), rate=rate)


def test_the_clock_must_be_aware() -> None:
    with pytest.raises(ValueError, match="naive"):
        quote(
            DebitUnits(100),
            rail=Rail.ONCHAIN,
            asset=USD,
            rate=Decimal(1),
            fees=NO_FEES,
            now=datetime(2025, 1, 1),
            ttl=TTL,
        )


rates = st.decimals(
    min_value=Decimal("0.00000001"),
    max_value=Decimal("100000000"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
)
assets = st.builds(Asset, st.just("XYZ"), st.integers(min_value=0, max_value=18))
fee_policies = st.builds(
    FeePolicy, st.integers(min_value=0, max_value=10_000_000), st.integers(min_value=0, max_value=100_000)
)
rails = st.sampled_from(list(Rail))


@given(st.integers(min_value=1, max_value=10**15), assets, rates, fee_policies, rails)
def test_a_price_side_quote_never_overdraws_and_never_underpays(
    units: int, asset: Asset, rate: Decimal, fees: FeePolicy, rail: Rail
) -> None:
    step = rail.granularity_msat
    if value_in_units(step + fees.fee_msat(step), asset, rate) > units:
        with pytest.raises(InputError, match="smallest transfer"):
            offer(DebitUnits(units), rail=rail, asset=asset, rate=rate, fees=fees)
        return
    made = offer(DebitUnits(units), rail=rail, asset=asset, rate=rate, fees=fees)
    assert made.transfer_msat > 0
    assert made.transfer_msat % step == 0
    assert made.fee_msat == fees.fee_msat(made.transfer_msat)
    assert made.debit_units <= units
    assert value_in_units(made.transfer_msat + made.fee_msat, asset, rate) <= made.debit_units
    bigger = made.transfer_msat + step
    assert value_in_units(bigger + fees.fee_msat(bigger), asset, rate) > units


@given(st.integers(min_value=1, max_value=10**12), assets, rates, fee_policies, rails)
def test_a_transfer_side_quote_debits_the_fewest_units_that_cover_it(
    sat: int, asset: Asset, rate: Decimal, fees: FeePolicy, rail: Rail
) -> None:
    cost = value_in_units(sat * 1000 + fees.fee_msat(sat * 1000), asset, rate)
    if cost > U64_MAX:
        with pytest.raises(InputError, match="largest amount"):
            offer(Sats(sat), rail=rail, asset=asset, rate=rate, fees=fees)
        return
    made = offer(Sats(sat), rail=rail, asset=asset, rate=rate, fees=fees)
    assert made.transfer_msat == sat * 1000
    assert made.debit_units >= cost
    assert made.debit_units - 1 < cost
