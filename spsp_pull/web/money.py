"""Amounts in words for people: integer minor units shown with the asset's decimals, exactly; and the
decimal amounts people type, read back into minor units exactly."""

from __future__ import annotations

import re
from decimal import Decimal

from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX

_DECIMAL = re.compile(r"([0-9]{1,20})(?:\.([0-9]*))?")


def format_amount(amount: int, scale: int) -> str:
    """`1000, 2` is "10.00"; thousands grouped ("1,234.50"). Integers and Decimal only: exact at any size."""
    return format(Decimal(amount).scaleb(-scale), f",.{scale}f")


def format_money(amount: int, scale: int, code: str) -> str:
    """`1000, 2, "USD"` is "10.00 USD"."""
    return f"{format_amount(amount, scale)} {code}"


def parse_amount(text: str, scale: int, field: str) -> int:
    """A decimal amount a person typed ("5", "5.2", "1,000.50") in minor units. More decimals than the
    asset has, zero, or more than U64_MAX units is refused (InputError naming `field`), never rounded."""
    match = _DECIMAL.fullmatch(text.strip().replace(",", ""))
    if match is None or len(match[2] or "") > scale:
        decimals = f"at most {scale} decimals" if scale else "no decimals"
        raise InputError("invalid-amount", f"Enter the amount as a number with {decimals}.", field=field)
    amount: int = int(match[1]) * 10**scale + int((match[2] or "").ljust(scale, "0") or "0")
    if not 0 < amount <= U64_MAX:
        raise InputError("amount-out-of-range", "Enter an amount greater than zero.", field=field)
    return amount
