"""Bitcoin / Lightning payouts of a pointer's allowance (DESIGN.md section 8).

What the server wires in (imported lazily here, so that `spsp_pull.bridge.<module>` stays cheap to import):

- `bridge_settings_from_env(env) -> BridgeSettings | None` (`settings`): None when no backend is configured;
- `start_bridge(settings, db, clock) -> Bridge` (`service`), `await bridge.stop()`;
- `add_payout_routes(router)` (`routes`), `PAYOUT_PATHS` / `PAYOUT_SCHEMAS` (`openapi`);
- `add_payout_cli(subparsers, client_factory)` (`cli`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spsp_pull.bridge.cli import add_payout_cli
    from spsp_pull.bridge.openapi import PAYOUT_PATHS, PAYOUT_SCHEMAS
    from spsp_pull.bridge.routes import add_payout_routes
    from spsp_pull.bridge.service import Bridge, start_bridge
    from spsp_pull.bridge.settings import BridgeSettings, bridge_settings_from_env

_EXPORTS = {
    "Bridge": "service",
    "start_bridge": "service",
    "BridgeSettings": "settings",
    "bridge_settings_from_env": "settings",
    "add_payout_routes": "routes",
    "PAYOUT_PATHS": "openapi",
    "PAYOUT_SCHEMAS": "openapi",
    "add_payout_cli": "cli",
}
__all__ = [
    "PAYOUT_PATHS",
    "PAYOUT_SCHEMAS",
    "Bridge",
    "BridgeSettings",
    "add_payout_cli",
    "add_payout_routes",
    "bridge_settings_from_env",
    "start_bridge",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
