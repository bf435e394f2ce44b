"""Pull budgets: delivered value is always covered by reservations, and debits match cumulative deliveries."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.ilp.pull_budget import GrantShare, PullBudget
from spsp_pull.rates import Asset, Conversion

ONE_TO_ONE = Conversion.between(Asset("XRP", 9), Asset("XRP", 9), Decimal(1))


def test_grants_used_up_are_settled_in_full_and_the_rest_on_close() -> None:
    budget = PullBudget(ONE_TO_ONE)
    budget.add_grant(1, 1000)
    budget.add_grant(2, 1000)
    assert budget.send_limit == 2000
    budget.record_fulfilled(1200)
    assert [(s.reservation_id, s.sent) for s in budget.used_up()] == [(1, 1000)]
    assert budget.used_up() == []
    budget.record_fulfilled(800)
    assert budget.used_up(keep=1) == []  # the newest grant stays open
    shares = budget.close_all()
    assert [(s.reservation_id, s.amount, s.sent) for s in shares] == [(2, 1000, 1000)]
    assert budget.covered == 2000 == budget.debit


def test_a_rechunk_returns_what_was_not_sent_and_later_grants_settle_by_later_deliveries() -> None:
    budget = PullBudget(ONE_TO_ONE)
    budget.add_grant(1, 1000)
    budget.add_grant(2, 1000)
    budget.record_fulfilled(1000)
    assert budget.used_up() == [GrantShare(1, 1000, 1000)]  # used up exactly: settled at once
    budget.record_fulfilled(500)
    assert budget.close_all() == [GrantShare(2, 1000, 500)]  # the re-chunk gives 500 back
    assert budget.covered == 1500 == budget.debit
    budget.add_grant(3, 1000)
    budget.record_fulfilled(100)
    assert budget.used_up() == []  # 100 of grant 3 used: it stays open
    budget.record_fulfilled(900)
    assert budget.used_up() == [GrantShare(3, 1000, 1000)]
    assert budget.covered == 2500 == budget.debit


def test_the_next_reservation_covers_what_is_to_be_sent_rounded_up() -> None:
    usd_to_xrp = Conversion.between(Asset("USD", 2), Asset("XRP", 9), Decimal("2.5"))
    budget = PullBudget(usd_to_xrp)  # 1 cent covers 25_000_000 units of XRP
    assert budget.pointer_units_for(25_000_000) == 1
    assert budget.pointer_units_for(25_000_001) == 2
    budget.add_grant(7, 3)
    assert budget.pointer_units_for(10_000_000) == 1  # 85_000_000 in all needs 4 cents; 3 are held
    assert budget.pointer_units_for(0) == 0


def test_cross_asset_debit_rounds_up_on_the_cumulative_total() -> None:
    usd_to_xrp = Conversion.between(Asset("USD", 2), Asset("XRP", 9), Decimal("2.5"))
    budget = PullBudget(usd_to_xrp)
    budget.add_grant(7, 3)  # 0.03 USD covers 0.075 XRP
    assert budget.send_limit == 75_000_000
    for _ in range(3):
        budget.record_fulfilled(10_000_001)
    assert budget.debit == 2  # 30_000_003 units of XRP: 0.0120000012 USD, rounded up to 2 cents
    assert [s.sent for s in budget.close_all()] == [2]


@given(
    grants=st.lists(st.integers(1, 10_000), min_size=1, max_size=8),
    deliveries=st.lists(st.integers(0, 5_000), max_size=30),
    rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2),
)
def test_settlements_never_exceed_reservations(
    grants: list[int], deliveries: list[int], rate: Decimal
) -> None:
    budget = PullBudget(Conversion.between(Asset("A", 2), Asset("B", 4), rate))
    for i, amount in enumerate(grants):
        budget.add_grant(i, amount)
    settled = []
    for units in deliveries:
        units = min(units, budget.send_limit - budget.fulfilled)
        budget.record_fulfilled(units)
        settled += budget.used_up()
    settled += budget.close_all()
    assert sorted(s.reservation_id for s in settled) == list(range(len(grants)))
    assert all(0 <= s.sent <= s.amount for s in settled)
    total_sent = sum(s.sent for s in settled)
    assert total_sent == budget.debit <= sum(grants)
    assert budget.send_limit >= budget.fulfilled
