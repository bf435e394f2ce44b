"""Failures to talk to a backend, as opposed to verdicts about a payment (see `outcomes`)."""

from __future__ import annotations


class BackendError(Exception):
    """The backend could not be asked or refused the request."""


class BackendUnavailable(BackendError):
    """No reply: connection refused or reset, or a time-out."""


class BackendAuthError(BackendError):
    """The backend refused our credentials (bitcoind user/password, LND macaroon)."""


class BackendProtocolError(BackendError):
    """The reply did not follow the backend's protocol."""
