"""Fixtures for tests that drive the JavaScript Interledger stack (harness/README.md).

Without the stack (scripts/interop-setup not run) these fixtures skip the test, except in CI (CI=true), where
they fail it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness.js_stack import JsConnector, JsPullServer, JsRuntime, in_ci, select_runtime, stack_problem


@pytest.fixture(scope="session")
def js_runtime() -> JsRuntime:
    """The Node that runs the JS programs; skips (fails in CI) when the stack is not installed."""
    problem = stack_problem()
    if problem is not None:
        if in_ci():
            pytest.fail(f"{problem} (CI=true: the interop stack must be installed)")
        pytest.skip(problem)
    return select_runtime()


@pytest.fixture
async def js_connector(js_runtime: JsRuntime) -> AsyncIterator[JsConnector]:
    """A fresh moneyd-style connector with default settings."""
    async with JsConnector(runtime=js_runtime) as connector:
        yield connector


@pytest.fixture
async def js_pull_server(js_connector: JsConnector, js_runtime: JsRuntime) -> AsyncIterator[JsPullServer]:
    """The JS pull server on `js_connector`."""
    async with JsPullServer(js_connector, runtime=js_runtime) as server:
        yield server
