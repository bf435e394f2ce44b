"""`spsp-pull payouts …`: payouts of a pointer on a running server.

```
spsp-pull payouts create TOKEN DESTINATION [--price-amount N | --transfer-amount X [--transfer-currency BTC]]
        [--method BTC-CHAIN|BTC-LN] [--auto-approve] [--notification-url URL] [--comment TEXT]
spsp-pull payouts list TOKEN [--status S,…] [--limit N] [--offset N]
spsp-pull payouts show|approve|cancel|events TOKEN PAYOUT_ID
spsp-pull payouts limits TOKEN [--currency BTC]
```
With the owner's API key (as the other commands); `--as-payee` uses the pointer alone as the capability.
`--server`, `--api-key` and `--as-payee` may come before or after the action.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from spsp_pull.cli_client import call, request, show_json
from spsp_pull.payment_pointer import pointer_token

Command = Callable[[argparse.Namespace], int]
ClientFactory = Callable[[str, str, Command], argparse.ArgumentParser]


def add_payout_cli(subparsers: Any, client_factory: ClientFactory) -> argparse.ArgumentParser:
    """Add `payouts` to the `spsp-pull` parser; `client_factory(name, help, command)` is the parser
    factory `build_parser` uses for commands that talk to a server (it adds --server and --api-key)."""
    del subparsers  # the factory adds to them
    parser = client_factory("payouts", "Bitcoin / Lightning payouts of a pointer", _missing_action)
    parser.add_argument(
        "--as-payee", action="store_true", help="act as the payee: the pointer is the capability, no key"
    )
    actions = parser.add_subparsers(metavar="ACTION", required=True)

    create = actions.add_parser("create", help="request a payout offer (NEW), or --auto-approve it")
    create.add_argument("token")
    create.add_argument("destination", help="address, bitcoin: URI or BOLT 11 invoice")
    amount = create.add_mutually_exclusive_group()
    amount.add_argument("--price-amount", help="most to charge, in the pointer's minor units")
    amount.add_argument("--transfer-amount", help="what must arrive (BTC by default)")
    create.add_argument("--transfer-currency", choices=["BTC", "SAT", "MSAT"])
    create.add_argument("--method", choices=["BTC-CHAIN", "BTC-LN"])
    create.add_argument("--auto-approve", action="store_true")
    create.add_argument("--notification-url")
    create.add_argument("--comment")
    create.set_defaults(command=cmd_create)

    listing = actions.add_parser("list", help="list a pointer's payouts")
    listing.add_argument("token")
    listing.add_argument("--status", help="comma-separated, e.g. QUEUED,IN_FLIGHT")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(command=cmd_list)

    extra = []
    for name, help_text, command in (
        ("show", "one payout with its proof", cmd_show),
        ("approve", "approve an offer before it expires", cmd_approve),
        ("cancel", "cancel a payout that is not being sent yet", cmd_cancel),
        ("events", "a payout's audit trail", cmd_events),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("token")
        action.add_argument("payout_id")
        action.set_defaults(command=command)
        extra.append(action)

    limits = actions.add_parser("limits", help="what can be paid out now")
    limits.add_argument("token")
    limits.add_argument("--currency")
    limits.set_defaults(command=cmd_limits)
    for action in (create, listing, limits, *extra):
        _repeat_client_options(action)
    return parser


def _repeat_client_options(parser: argparse.ArgumentParser) -> None:
    """Accept the client options after the action too (given there, they win)."""
    parser.add_argument("--server", default=argparse.SUPPRESS, help="server base URL")
    parser.add_argument("--api-key", default=argparse.SUPPRESS, help="Bearer key of the pointer's owner")
    parser.add_argument("--as-payee", action="store_true", default=argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)


def _missing_action(_args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires an action
    return 2


def _base(args: argparse.Namespace) -> str:
    token = quote(pointer_token(args.token), safe="")
    return f"/{token}" if args.as_payee else f"/pointers/{token}"


def _call(args: argparse.Namespace, method: str, path: str, body: object = None) -> Any:
    if args.as_payee:
        url = args.server.rstrip("/") + path
        return asyncio.run(request(method, url, None, body))
    return call(args, method, path, body)


def _show(value: object) -> int:
    return show_json(value)


def cmd_create(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"destination": args.destination}
    optional = {
        "priceAmount": args.price_amount,
        "transferAmount": args.transfer_amount,
        "transferCurrency": args.transfer_currency,
        "method": args.method,
        "notificationUrl": args.notification_url,
        "comment": args.comment,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if args.auto_approve:
        body["autoApprove"] = True
    return _show(_call(args, "POST", f"{_base(args)}/payouts", body))


def cmd_list(args: argparse.Namespace) -> int:
    query: dict[str, object] = {"limit": args.limit, "offset": args.offset}
    if args.status:
        query["status"] = args.status
    return _show(_call(args, "GET", f"{_base(args)}/payouts?{urlencode(query)}"))


def _one(args: argparse.Namespace) -> str:
    return f"{_base(args)}/payouts/{quote(args.payout_id, safe='')}"


def cmd_show(args: argparse.Namespace) -> int:
    return _show(_call(args, "GET", _one(args)))


def cmd_approve(args: argparse.Namespace) -> int:
    return _show(_call(args, "POST", f"{_one(args)}/approve"))


def cmd_cancel(args: argparse.Namespace) -> int:
    return _show(_call(args, "POST", f"{_one(args)}/cancel"))


def cmd_events(args: argparse.Namespace) -> int:
    return _show(_call(args, "GET", f"{_one(args)}/events"))


def cmd_limits(args: argparse.Namespace) -> int:
    suffix = f"?{urlencode({'currency': args.currency})}" if args.currency else ""
    return _show(_call(args, "GET", f"{_base(args)}/payout-limits{suffix}"))
