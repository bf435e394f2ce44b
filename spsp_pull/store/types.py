"""Column types that keep money exact and datetimes UTC on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

AMOUNT_DIGITS = 40
S = TypeVar("S", bound=StrEnum)


class Amount(TypeDecorator[int]):
    """A non-negative integer of up to 40 decimal digits (u64 amounts and their sums).

    PostgreSQL stores it as NUMERIC(40, 0). SQLite has no exact type for integers above 2**63 - 1 (it would
    silently turn them into floats), so there it is stored as text.
    """

    impl = Numeric(AMOUNT_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(AMOUNT_DIGITS))
        return dialect.type_descriptor(Numeric(AMOUNT_DIGITS, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"amount must be a non-negative int, got {value!r}")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StateColumn(TypeDecorator[S]):
    """A `StrEnum` stored as its value (text); a value read back is the member again."""

    impl = String
    cache_ok = True

    def __init__(self, states: type[S], length: int) -> None:
        super().__init__(length)
        self.states = states
        self.length = length

    def process_bind_param(self, value: S | str | None, dialect: Dialect) -> Any:
        return None if value is None else self.states(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> S | None:
        return None if value is None else self.states(value)


def allowed(column: str, states: type[StrEnum]) -> str:
    """The SQL of a CHECK constraint that `column` holds one of the values of `states`."""
    return f"{column} IN ({', '.join(repr(state.value) for state in states)})"
