"""Argument types of the command line (each turns one argument's text into its value or refuses it), shared by
every command module."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import parse_amount

MAX_TIMEOUT_SECONDS = 86_400 * 366


def seconds(text: str) -> timedelta:
    """A positive number of seconds on the command line (decimals allowed), exactly."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(f"not a number of seconds from 0 to {MAX_TIMEOUT_SECONDS}: {text!r}")
    return timedelta(microseconds=int(value * 1_000_000))


def amount_argument(text: str) -> int:
    """An amount in minor units on the command line: 1..2^64-1, as the server takes it."""
    try:
        return parse_amount(text, "the amount")
    except InputError as error:
        raise argparse.ArgumentTypeError(f"{error.detail}, in minor units (got {text!r})") from None


def positive_count(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) == 0:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 999999999, got {text!r}")
    return int(text)


def btp_url_argument(text: str) -> str:
    """`btp+ws://user:token@host:port`: the payee's account; both user and token are needed."""
    from stream.aio.btp_client import parse_btp_url

    try:
        url = parse_btp_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (btp+ws://user:token@host:port)") from None
    if not url.username or not url.token:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no credentials: give btp+ws://user:token@host:port (any user name and a token "
            "of your choice at the pull server's embedded endpoint)"
        )
    return text


def payee_btp(args: argparse.Namespace) -> str:
    from spsp_pull.payee import default_btp_url

    return str(args.btp) if args.btp else default_btp_url()
