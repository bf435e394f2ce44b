"""How a `spsp-pull` command fails: one line on stderr (what went wrong; what to do) and an exit status.

Commands raise a `CliError` subclass, or let a library error through; `main` renders either once, with
`as_cli_error`. The statuses are documented in the README ("Exit status"); never renumber one.
"""

from __future__ import annotations

import errno
import re
from enum import IntEnum

import aiohttp

from spsp_pull.http_problem import problem_text


class ExitStatus(IntEnum):
    OK = 0
    REFUSED = 1  # the server, the network or the ledger refused the request or could not do it
    PARTIAL = 2  # a pull or payment moved less than asked, or a subscription ended before its --cycles
    AUDIT_MISMATCH = 3  # `spsp-pull audit` found counters the ledger does not explain
    USAGE = 4  # a bad argument or option value; nothing was sent
    NOT_FOUND = 5  # the pointer (account, key, payout) does not exist, or not for this API key
    NETWORK = 6  # the server or the BTP endpoint cannot be reached (or a port to listen on is taken)
    INTERNAL = 70  # a bug: the line says what; --debug shows the traceback
    INTERRUPTED = 130  # Ctrl-C


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EADDRNOTAVAIL,
        errno.EPIPE,
    }
)


class CliError(Exception):
    """A failure the user can act on: `what` went wrong, `hint` says what to do about it."""

    status = ExitStatus.REFUSED

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint

    def line(self) -> str:
        return f"{self.what} ({self.hint})" if self.hint else self.what


class Refused(CliError):
    status = ExitStatus.REFUSED


class UsageError(CliError):
    status = ExitStatus.USAGE


class NotFound(CliError):
    status = ExitStatus.NOT_FOUND


class Unreachable(CliError):
    status = ExitStatus.NETWORK


class InternalError(CliError):
    status = ExitStatus.INTERNAL


def http_error(status: int, body: object, *, hint_404: str, hint_401: str) -> CliError:
    """The CliError for an HTTP error answer from the server."""
    text = problem_text(status, body)
    if status == 404:
        return NotFound(text, hint_404)
    if status == 401:
        return Refused(text, hint_401)
    if status == 403:
        return Refused(text, "this needs another account's key or the admin key")
    return Refused(text)


def as_cli_error(exc: BaseException) -> CliError:
    """Any error a command let through, as the one line and status the user sees."""
    if isinstance(exc, CliError):
        return exc
    from spsp_pull import payee
    from spsp_pull.config_error import ConfigError
    from spsp_pull.domain.errors import InputError
    from spsp_pull.payment_pointer import InvalidPaymentPointer
    from spsp_pull.subscription import StateFileError

    if isinstance(exc, ConfigError | InvalidPaymentPointer | StateFileError):
        return UsageError(str(exc))
    if isinstance(exc, InputError):
        option = "--" + re.sub("([A-Z])", r"-\1", exc.field).lower() + ": " if exc.field else ""
        return UsageError(f"{option}{exc.detail} ({exc.code})")
    if isinstance(exc, payee.PayeeError):
        return _payee_error(exc)
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return Unreachable(f"network error: {exc or type(exc).__name__}", "is the server running?")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return Unreachable(
            f"cannot listen: {exc.strerror or exc}",
            "another server runs there: stop it, or pick another --port / --btp-port",
        )
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError):
        return UsageError(f"cannot use {exc.filename}: {exc.strerror}")
    if isinstance(exc, OSError):
        what = f"{exc.strerror or type(exc).__name__}: {exc}" if exc.strerror else str(exc) or repr(exc)
        return Unreachable(what) if exc.errno in _NETWORK_ERRNOS else Refused(what)
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return Refused(
            f"database error: {type(exc).__name__}: {exc}".splitlines()[0],
            "check --database-url / SPSP_DATABASE_URL",
        )
    return InternalError(
        f"unexpected {type(exc).__name__}: {exc}".splitlines()[0],
        "a bug: run again with --debug for the traceback and report it",
    )


def _payee_error(exc: BaseException) -> CliError:
    from spsp_pull import payee

    what = str(exc)
    if isinstance(exc, payee.PointerNotFound):
        return NotFound(what, "check the pointer: this server does not know it")
    if isinstance(exc, payee.SpspUnreachable):
        return Unreachable(what, "is the server running, and is the pointer's host and port right?")
    if isinstance(exc, payee.BtpUnreachable):
        return Unreachable(
            what, "is a BTP endpoint listening there? start the pull server, or give --btp / SPSP_PAYEE_BTP"
        )
    if isinstance(exc, payee.BtpRefused):
        return Refused(
            what, "the first token used with a user name is kept: use that token, or another user name"
        )
    if isinstance(exc, payee.WrongPointerKind):
        return UsageError(what)
    return Refused(what)
