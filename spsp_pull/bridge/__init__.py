"""Bitcoin / Lightning payouts of a pointer's allowance.

What the server wires in (imported lazily here, so that `spsp_pull.bridge.<module>` stays cheap to import):

- `bridge_settings_from_env(env) -> BridgeSettings | None` (`settings`): None when no backend is configured;
- `start_bridge(settings, db, clock) -> Bridge` (`service`), `await bridge.stop()`;
- `PAYOUT_PATHS` / `PAYOUT_SCHEMAS` (`openapi`).

The payout routes are `spsp_pull.api.payouts`, the `payouts` command `spsp_pull.cli_payouts`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spsp_pull.bridge.openapi import PAYOUT_PATHS, PAYOUT_SCHEMAS
    from spsp_pull.bridge.service import Bridge, start_bridge
    from spsp_pull.bridge.settings import BridgeSettings, bridge_settings_from_env

_EXPORTS = {
    "Bridge": "service",
    "start_bridge": "service",
    "BridgeSettings": "settings",
    "bridge_settings_from_env": "settings",
    "PAYOUT_PATHS": "openapi",
    "PAYOUT_SCHEMAS": "openapi",
}
__all__ = [
    "PAYOUT_PATHS",
    "PAYOUT_SCHEMAS",
    "Bridge",
    "BridgeSettings",
    "bridge_settings_from_env",
    "start_bridge",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
