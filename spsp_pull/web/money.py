"""Amounts in words for people: integer minor units shown with the asset's decimals, exactly."""

from __future__ import annotations

from decimal import Decimal


def format_amount(amount: int, scale: int) -> str:
    """`1000, 2` is "10.00"; thousands grouped ("1,234.50"). Integers and Decimal only: exact at any size."""
    return format(Decimal(amount).scaleb(-scale), f",.{scale}f")


def format_money(amount: int, scale: int, code: str) -> str:
    """`1000, 2, "USD"` is "10.00 USD"."""
    return f"{format_amount(amount, scale)} {code}"
