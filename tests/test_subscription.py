"""When a subscription stops: the agreement's state in the SPSP answer, or its cycles (older servers)."""

from __future__ import annotations

from typing import Any

import pytest

from spsp_pull.payee import SpspDetails
from spsp_pull.subscription import agreement_over


def answer(**pull: Any) -> SpspDetails:
    return SpspDetails("private.spsppull.tag", b"\0" * 32, pull)


@pytest.mark.parametrize(
    ("state", "over"),
    [
        ("active", None),
        ("pending", None),
        ("cancelled", "cancelled"),
        ("ended", "ended"),
        ("expired", "expired"),
    ],
)
def test_the_state_says_when_the_agreement_is_over(state: str, over: str | None) -> None:
    assert agreement_over(answer(state=state, cycle=99, agreement={"cycles": 3})) == over


def test_without_a_state_the_cycles_tell() -> None:
    assert agreement_over(answer(cycle=3, agreement={"cycles": 3})) is None
    assert agreement_over(answer(cycle=4, agreement={"cycles": 3})) == "ended"
    assert agreement_over(SpspDetails("private.spsppull.tag", b"\0" * 32, None)) is None
