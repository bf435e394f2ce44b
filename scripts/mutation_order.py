"""A pytest plugin for `scripts/mutation`: each mutant's tests run fastest first (their durations as mutmut's
stats run measured them), so a mutant that a quick test kills costs that test rather than the selection (the
run stops at the first failure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")  # mutmut runs the tests from its `mutants` directory


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not STATS.exists():
        return
    durations: dict[str, float] = json.loads(STATS.read_text())["duration_by_test"]
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
