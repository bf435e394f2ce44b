"""`spsp-pull`: run the server, and manage pointers and accounts on a running one."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from sqlalchemy.exc import SQLAlchemyError

from spsp_pull import config as config_module
from spsp_pull.cli_arguments import amount_argument, btp_url_argument, payee_btp, positive_count, seconds
from spsp_pull.cli_client import call, show_json
from spsp_pull.cli_errors import (
    CliError,
    ExitStatus,
    Refused,
    UsageError,
    as_cli_error,
)
from spsp_pull.cli_payouts import add_payout_cli
from spsp_pull.domain.clock import isoformat_z, parse_timestamp
from spsp_pull.domain.duration import parse_interval
from spsp_pull.domain.errors import InputError
from spsp_pull.payment_pointer import pointer_token, resolve

DEFAULT_SERVER = "http://127.0.0.1:6000"
Command = Callable[[argparse.Namespace], int]

__all__ = ["CliError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a failure ends with one line on stderr and its ExitStatus (see cli_errors)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    try:
        args = build_parser().parse_args(arguments)
        command: Command = args.command
        return command(args)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except Exception as exc:
        error = as_cli_error(exc)
        if debug:
            _show_every_cause(exc)
            traceback.print_exception(exc)
        print(f"spsp-pull: {error.line()}", file=sys.stderr)
        return error.status


def _show_every_cause(exc: BaseException | None) -> None:
    """--debug: the library error a CliError was raised for too, though it was raised `from None`."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__suppress_context__ = False
        exc = exc.__cause__ or exc.__context__


class _Parser(argparse.ArgumentParser):
    """Bad arguments are a UsageError (one line, ExitStatus.USAGE), not argparse's exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spsp-pull", description="Interledger SPSP pull-pointer server")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (SQLite and an embedded ILP endpoint by default)")
    serve.add_argument("--port", type=int, help="HTTP port (SPSP_PORT, default 6000)")
    serve.add_argument("--bind", help="listen address (SPSP_BIND, default 127.0.0.1)")
    serve.add_argument("--host", help="public host in pointers, may include a port (SPSP_HOST)")
    serve.add_argument("--data-dir", type=Path, help="where the embedded defaults live (SPSP_DATA_DIR)")
    serve.add_argument(
        "--database-url", help="sqlite+aiosqlite:///... or postgresql+asyncpg://... (SPSP_DATABASE_URL)"
    )
    serve.add_argument(
        "--btp-port", type=int, help="embedded BTP endpoint port (SPSP_BTP_PORT, default 7768)"
    )
    serve.add_argument(
        "--uplink", help="btp+ws://user:secret@host:port of an ILP connector (SPSP_ILP_UPLINK)"
    )
    serve.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="serve HTTPS with a self-signed certificate kept in the data directory (local use)",
    )
    serve.set_defaults(command=cmd_serve)

    audit = sub.add_parser(
        "audit",
        help="recompute every pointer's counters from the ledger; exit 3 and list each mismatch if any",
    )
    audit.add_argument("--data-dir", type=Path, help="where the embedded database lives (SPSP_DATA_DIR)")
    audit.add_argument("--database-url", help="the server's database (SPSP_DATABASE_URL)")
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.set_defaults(command=cmd_audit)

    def client(name: str, help_text: str, command: Command) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--server", default=os.environ.get("SPSP_SERVER", DEFAULT_SERVER), help="server base URL"
        )
        p.add_argument(
            "--api-key", default=None, help="Bearer key (SPSP_API_KEY; default: the local admin key)"
        )
        p.set_defaults(command=command)
        return p

    create = client("create", "create a pull pointer", cmd_create)
    add_terms_arguments(create, required=True)
    create.add_argument("--webhook")
    create.add_argument("--description")
    create.add_argument(
        "--output", choices=["json", "pointer"], default="json", help="print the pointer alone (for scripts)"
    )

    update = client(
        "update",
        "change a pointer's agreement (e.g. --cycles 24 to extend), webhook, description or metadata",
        cmd_update,
    )
    update.add_argument("token")
    add_terms_arguments(update, required=False)
    webhook = update.add_mutually_exclusive_group()
    webhook.add_argument("--webhook", help="new http(s) URL for pull announcements")
    webhook.add_argument("--no-webhook", action="store_true", help="remove the webhook")
    update.add_argument("--description")
    update.add_argument("--metadata", help="a JSON object, or null to remove the metadata")

    cancel = client("cancel", "cancel a pointer", cmd_cancel)
    cancel.add_argument("token")

    pause = client("pause", "pause a pointer: nothing can be pulled until it is resumed", cmd_pause)
    pause.add_argument("token")
    pause.add_argument(
        "--until", help="resume by itself then: an ISO 8601 time with offset, or a duration from now (P7D)"
    )

    resume = client("resume", "resume a paused pointer", cmd_resume)
    resume.add_argument("token")

    show = client("show", "show one of your pointers with its versions and pulls", cmd_show)
    show.add_argument("token")

    listing = client("list", "list your pointers", cmd_list)
    listing.add_argument("--limit", type=int, default=50)

    query = sub.add_parser("query", help="SPSP query of a pointer ($host/path or URL)")
    query.add_argument("pointer")
    query.set_defaults(command=cmd_query)

    accounts = client(
        "accounts", "list accounts, create one, or list, issue and revoke its keys (admin key)", cmd_accounts
    )
    accounts.add_argument(
        "action", choices=["list", "create", "new-key", "keys", "revoke-key"], nargs="?", default="list"
    )
    accounts.add_argument("name", nargs="?")
    accounts.add_argument("key_id", nargs="?", help="for revoke-key: the key's id (from accounts keys)")
    accounts.add_argument("--label", help="for new-key: a label to recognise the key by")

    webhook_secret = client(
        "webhook-secret",
        "show the key your webhooks are signed with (Webhook-Signature), or make a new one",
        cmd_webhook_secret,
    )
    webhook_secret.add_argument(
        "--rotate", action="store_true", help="a new secret; the old one also signs for 24 hours more"
    )
    webhook_secret.add_argument("--account", help="another account's secret (admin key)")

    def payee(name: str, help_text: str, command: Command) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("pointer", help="$host/path payment pointer or http(s) URL")
        p.add_argument(
            "--btp",
            type=btp_url_argument,
            default=os.environ.get("SPSP_PAYEE_BTP"),
            help="your BTP account: btp+ws://user:token@host:port (SPSP_PAYEE_BTP; default: a new account "
            "at 127.0.0.1:7768, the pull server's embedded endpoint or moneyd)",
        )
        p.add_argument("--timeout", type=seconds, default=timedelta(seconds=60), help="seconds")
        p.add_argument("--window", type=int, default=1, help="Prepares in flight")
        p.set_defaults(command=command)
        return p

    pull_cmd = payee("pull", "pull from a pull pointer (as the payee)", cmd_pull)
    pull_cmd.add_argument(
        "--amount", type=amount_argument, help="how much to pull (default: all that is available)"
    )
    pull_cmd.add_argument("--quiet", action="store_true", help="no progress bar")

    send_cmd = payee("send", "push a payment to a payment pointer", cmd_send)
    send_cmd.add_argument("--amount", type=amount_argument, required=True)

    subscribe = payee(
        "subscribe", "pull once per cycle of a pull pointer, resuming after restarts", cmd_subscribe
    )
    subscribe.add_argument("--amount", type=amount_argument, required=True, help="to pull each cycle")
    subscribe.add_argument("--state", type=Path, required=True, help="state file (last cycle pulled)")
    subscribe.add_argument(
        "--cycles", type=positive_count, help="stop after this many pulls (or when the agreement is over)"
    )

    add_payout_cli(sub, client)
    from spsp_pull.collector.cli import add_collect_cli

    add_collect_cli(sub)

    jwt_cmd = sub.add_parser("jwt", help="make an offline (JWT) pull pointer")
    add_terms_arguments(jwt_cmd, required=True)
    jwt_cmd.add_argument("--host", default=os.environ.get("SPSP_HOST", "localhost:6000"))
    jwt_cmd.add_argument(
        "--secret", default=os.environ.get("SPSP_JWT_SECRET"), help="HS256 secret (SPSP_JWT_SECRET)"
    )
    jwt_cmd.add_argument("--private-key", type=Path, help="PEM private key for ES256 / EdDSA")
    jwt_cmd.add_argument("--kid", help="key id registered with the server (with --private-key)")
    jwt_cmd.add_argument("--jti", help="token id, for revocation")
    jwt_cmd.add_argument("--expires-in", type=positive_count, help="JWT lifetime in seconds (exp claim)")
    jwt_cmd.set_defaults(command=cmd_jwt)
    for command_parser in sub.choices.values():
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


def add_terms_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--amount", required=required, help="per interval, in minor units")
    if required:
        parser.add_argument("--asset-code", required=True)
        parser.add_argument("--asset-scale", required=True)
    parser.add_argument("--interval", required=required, help="ISO 8601 duration, e.g. P1M")
    parser.add_argument("--cycles", required=required)
    parser.add_argument("--cap", choices=["true", "false"], default="false" if required else None)
    if required:
        parser.add_argument("--start", help="ISO 8601 UTC (default: now)")
    parser.add_argument("--expiry", help="ISO 8601 UTC")


def terms_body(args: argparse.Namespace) -> dict[str, Any]:
    names = {
        "amount": "amount",
        "asset_code": "assetCode",
        "asset_scale": "assetScale",
        "interval": "interval",
        "cycles": "cycles",
        "cap": "cap",
        "start": "start",
        "expiry": "expiry",
        "webhook": "webhook",
        "description": "description",
    }
    return {key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr, None) is not None}


def cmd_serve(args: argparse.Namespace) -> int:
    from spsp_pull.server import serve_forever

    config = config_module.from_environment(
        port=args.port,
        bind=args.bind,
        host=args.host,
        data_dir=args.data_dir,
        database_url=args.database_url,
        btp_port=args.btp_port,
        ilp_uplink=args.uplink,
    )
    if args.tls_self_signed and config.tls_cert is None:
        from dataclasses import replace

        from spsp_pull.tls import self_signed

        cert, key = self_signed(config.data_dir, config.public_host)
        config = replace(config, tls_cert=cert, tls_key=key)
    asyncio.run(serve_forever(config))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    created = call(args, "POST", "/", terms_body(args))
    for warning in created.get("warnings") or ():
        print(f"warning: {warning.get('code')}: {warning.get('detail')}", file=sys.stderr)
    if args.output == "pointer":
        print(created["pointer"])
        return 0
    return show_json(created)


def cmd_update(args: argparse.Namespace) -> int:
    body = terms_body(args)
    if args.no_webhook:
        body["webhook"] = None
    if args.metadata is not None:
        body["metadata"] = json_object_or_null(args.metadata, "--metadata")
    if not body:
        raise UsageError(
            "nothing to change: give --cycles, --amount, --interval, --cap, --expiry, --webhook, "
            "--no-webhook, --description or --metadata"
        )
    return show_json(call(args, "PATCH", f"/pointers/{pointer_token(args.token)}", body))


def json_object_or_null(text: str, option: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    raise UsageError(f"{option} must be a JSON object (or null)")


def cmd_cancel(args: argparse.Namespace) -> int:
    return show_json(call(args, "DELETE", f"/pointers/{pointer_token(args.token)}"))


def cmd_pause(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"paused": True}
    if args.until is not None:
        body["resumesAt"] = isoformat_z(resume_time(args.until, datetime.now(UTC)))
    return show_json(call(args, "PATCH", f"/pointers/{pointer_token(args.token)}", body))


def resume_time(text: str, now: datetime) -> datetime:
    """`--until`: a time with an offset, or an ISO 8601 duration counted from `now`."""
    if text.startswith("P"):
        try:
            return parse_interval(text).step(now, 1)
        except InputError as exc:
            raise UsageError(f"--until: {exc.detail}") from None
    try:
        return parse_timestamp(text, "--until")
    except InputError as exc:
        raise UsageError(exc.detail) from None


def cmd_resume(args: argparse.Namespace) -> int:
    return show_json(call(args, "PATCH", f"/pointers/{pointer_token(args.token)}", {"paused": False}))


def cmd_show(args: argparse.Namespace) -> int:
    return show_json(call(args, "GET", f"/pointers/{pointer_token(args.token)}"))


def cmd_list(args: argparse.Namespace) -> int:
    return show_json(call(args, "GET", f"/pointers?limit={args.limit}"))


def cmd_query(args: argparse.Namespace) -> int:
    from spsp_pull.payee import fetch_spsp

    return show_json(asyncio.run(fetch_spsp(args.pointer)))


def cmd_pull(args: argparse.Namespace) -> int:
    from spsp_pull.payee import pull

    def progress(received: int) -> None:
        if args.quiet:
            return
        if args.amount:
            done = min(40, received * 40 // args.amount)
            bar = "#" * done + "." * (40 - done)
            print(f"\r[{bar}] {received}/{args.amount}", end="", file=sys.stderr, flush=True)
        else:
            print(f"\rreceived {received}", end="", file=sys.stderr, flush=True)

    outcome = asyncio.run(
        pull(
            args.pointer,
            args.amount,
            btp_url=payee_btp(args),
            time_limit=args.timeout,
            max_in_flight=args.window,
            on_progress=progress,
        )
    )
    if not args.quiet:
        print(file=sys.stderr)
    why = {
        "complete": "complete",
        "closed-by-server": "the server ended the stream",
        "timeout": f"timed out after {args.timeout.total_seconds():g} s",
    }[outcome.reason]
    detail = f": {outcome.detail}" if outcome.detail else ""
    wanted = f" of {args.amount}" if args.amount else ""
    print(f"received {outcome.amount}{wanted} ({why}{detail})")
    done = outcome.complete or (args.amount is None and outcome.amount > 0)
    return ExitStatus.OK if done else ExitStatus.PARTIAL


def cmd_send(args: argparse.Namespace) -> int:
    from spsp_pull.payee import send

    outcome = asyncio.run(
        send(
            args.pointer,
            args.amount,
            btp_url=payee_btp(args),
            time_limit=args.timeout,
            max_in_flight=args.window,
        )
    )
    print(f"sent {outcome.amount} of {args.amount} ({outcome.reason})")
    return ExitStatus.OK if outcome.complete else ExitStatus.PARTIAL


def cmd_subscribe(args: argparse.Namespace) -> int:
    import logging

    from spsp_pull.domain.clock import SystemClock
    from spsp_pull.payee import PaymentOutcome, SpspDetails, pull_queried
    from spsp_pull.subscription import Subscriber

    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    btp = payee_btp(args)

    async def puller(details: SpspDetails, amount: int) -> PaymentOutcome:
        return await pull_queried(
            details, amount, btp_url=btp, time_limit=args.timeout, max_in_flight=args.window
        )

    subscriber = Subscriber(args.pointer, args.amount, args.state, puller=puller, clock=SystemClock())
    end = asyncio.run(subscriber.run(max_cycles=args.cycles))
    if end.over is None:
        print(f"subscription done: pulled in {end.pulls} cycles")
        return ExitStatus.OK
    wanted = f" of {args.cycles}" if args.cycles else ""
    print(f"subscription over: the agreement is {end.over}; pulled in {end.pulls}{wanted} cycles")
    return ExitStatus.PARTIAL if args.cycles and end.pulls < args.cycles else ExitStatus.OK


AUDIT_MISMATCH_EXIT = ExitStatus.AUDIT_MISMATCH


def cmd_audit(args: argparse.Namespace) -> int:
    """Exit 0 when the ledger explains every counter, AUDIT_MISMATCH_EXIT with one line per mismatch."""
    from spsp_pull.store.audit import audit_ledger
    from spsp_pull.store.database import Database

    config = config_module.from_environment(database_url=args.database_url, data_dir=args.data_dir)
    url = config.resolved_database_url()
    if not config.database_url and not (config.data_dir / "spsp-pull.sqlite3").exists():
        raise CliError(f"no database in {config.data_dir} (give --data-dir or --database-url)")

    async def run() -> Any:
        db = Database(url, sqlite_driver=config.sqlite_driver)
        try:
            return await audit_ledger(db, now=datetime.now(UTC))
        finally:
            await db.close()

    try:
        report = asyncio.run(run())
    except SQLAlchemyError as exc:
        raise Refused(f"cannot read the ledger: {exc.__class__.__name__}: {exc}".splitlines()[0]) from None
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for mismatch in report.mismatches:
            print(mismatch.line())
        verdict = "clean" if report.clean else f"{len(report.mismatches)} mismatches"
        print(
            f"audit: {verdict}: {report.pointers} pointers, {report.reservations} reservations, "
            f"{report.pulls} pulls in {report.duration.total_seconds():.3f} s"
        )
    return 0 if report.clean else AUDIT_MISMATCH_EXIT


def cmd_accounts(args: argparse.Namespace) -> int:
    if args.action == "list":
        return show_json(call(args, "GET", "/accounts"))
    if not args.name:
        raise UsageError(f"accounts {args.action} needs a NAME")
    if args.action == "create":
        return show_json(call(args, "POST", "/accounts", {"name": args.name}))
    keys = f"/accounts/{quote(args.name, safe='')}/keys"
    if args.action == "keys":
        return show_json(call(args, "GET", keys))
    if args.action == "revoke-key":
        if not args.key_id:
            raise UsageError("accounts revoke-key needs a NAME and a KEY_ID")
        return show_json(call(args, "DELETE", f"{keys}/{quote(args.key_id, safe='')}"))
    return show_json(call(args, "POST", keys, {"label": args.label} if args.label else None))


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    path = "/me" if args.account is None else f"/accounts/{quote(args.account, safe='')}"
    if args.rotate:
        return show_json(call(args, "POST", f"{path}/webhook-secret/rotate"))
    return show_json(call(args, "GET", f"{path}/webhook-secret"))


def cmd_jwt(args: argparse.Namespace) -> int:
    from spsp_pull.offline import hs256_secret_problem, mint_offline_pointer

    claims: dict[str, object] = terms_body(args)
    validate_offline_terms(claims)
    resolve(f"${args.host}/token")  # the pointer printed must be one
    if args.jti:
        claims["jti"] = args.jti
    if args.expires_in:
        import time

        claims["exp"] = int(time.time()) + args.expires_in
    if args.private_key is not None:
        if not args.kid:
            raise UsageError("--private-key needs --kid (the key id registered with the server)")
        pem = args.private_key.read_text()
        try:
            algorithm = "EdDSA" if "ED25519" in pem.upper() or _is_ed25519(pem) else "ES256"
            token = mint_offline_pointer(claims, private_key=pem, algorithm=algorithm, kid=args.kid)
        except (ValueError, TypeError) as exc:
            raise UsageError(
                f"--private-key {args.private_key}: {exc}",
                "give an unencrypted PEM private key, P-256 (ES256) or Ed25519 (EdDSA)",
            ) from None
    elif args.secret:
        if (problem := hs256_secret_problem(args.secret)) is not None:
            raise UsageError(f"--secret (SPSP_JWT_SECRET) {problem}")
        token = mint_offline_pointer(claims, secret=args.secret, algorithm="HS256")
    else:
        raise UsageError("give --secret (HS256, or SPSP_JWT_SECRET) or --private-key with --kid")
    print(f"${args.host}/{token}")
    return 0


def validate_offline_terms(claims: dict[str, object]) -> None:
    """The server's own validators, so that terms it would refuse are never signed."""
    from spsp_pull.domain.details_input import parse_details
    from spsp_pull.domain.terms_input import parse_terms

    targets = config_module.from_environment().outbound_targets
    parse_terms(claims, datetime.now(UTC))
    parse_details(claims, targets)


def _is_ed25519(pem: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return isinstance(load_pem_private_key(pem.encode(), password=None), Ed25519PrivateKey)


if __name__ == "__main__":
    sys.exit(main())
