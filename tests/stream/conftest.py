"""Fixtures for the codec tests. Parametrized vector cases come from `tests.stream.vectors.cases`."""

from collections.abc import Callable

import pytest

from tests.stream.vectors import Json, load


@pytest.fixture(scope="session")
def vectors() -> Callable[[str], Json]:
    """`vectors("oer.json")`: a parsed file of tests/vectors/ (cached; treat it as read-only)."""
    return load
