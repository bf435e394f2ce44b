"""The columns of a lookup's rows and how their raw values become Python values: what a row reader is made
from (`records.pointer_reader` builds records straight from the row tuple)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Processor = Callable[[Any], Any] | None
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RowShape:
    """The columns of a lookup's rows, in order, and how each one's raw value becomes a Python value (`None`:
    it is one already). A processor is never given `None`."""

    names: tuple[str, ...]
    processors: tuple[Processor, ...]

    def position(self, name: str) -> int:
        return self.names.index(name)

    def converter(self, name: str) -> Processor:
        return self.processors[self.position(name)]

    def subset(self, names: Sequence[str]) -> RowShape:
        """The shape of rows made of the columns `names` of these."""
        return RowShape(tuple(names), tuple(self.converter(name) for name in names))

    def values(self, names: Sequence[str]) -> Callable[[Sequence[Any]], list[Any]]:
        """A function from a raw row to the Python values of the columns `names`, in that order."""
        positions = [self.position(name) for name in names]
        pick = operator.itemgetter(*positions)
        take = pick if len(positions) > 1 else lambda raw: (pick(raw),)
        convert = [
            (i, process) for i, name in enumerate(names) if (process := self.converter(name)) is not None
        ]

        def values(raw: Sequence[Any]) -> list[Any]:
            result = list(take(raw))
            for i, process in convert:
                if (value := result[i]) is not None:
                    result[i] = process(value)
            return result

        return values


RowReader = Callable[[RowShape], Callable[[Sequence[Any]], _T]]
"""Given a lookup's row shape (once per lookup), the function that turns its raw rows into `_T`s."""


def mapping_reader(shape: RowShape) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Rows as dicts by column name."""
    values = shape.values(shape.names)
    return lambda raw: dict(zip(shape.names, values(raw), strict=True))
