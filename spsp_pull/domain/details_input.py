"""A pointer's webhook, description and metadata as they arrive in HTTP bodies, validated.

They are not agreement terms: changing them never makes a new agreement version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeVar
from urllib.parse import urlsplit

from spsp_pull.domain.errors import InputError

_T = TypeVar("_T")

MAX_WEBHOOK_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 1000
MAX_METADATA_BYTES = 8192


class Keep(Enum):
    KEEP = "keep"


KEEP: Final = Keep.KEEP
"""In `DetailChanges`: leave the field as it is."""


@dataclass(frozen=True, slots=True)
class Details:
    webhook: str | None = None
    description: str | None = None
    metadata: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class DetailChanges:
    """An update's new webhook, description and metadata: `KEEP` leaves one as it is, None removes it."""

    webhook: str | Keep | None = KEEP
    description: str | Keep | None = KEEP
    metadata: dict[str, object] | Keep | None = KEEP


NO_DETAIL_CHANGES = DetailChanges()


def parse_details(payload: Mapping[str, object]) -> Details:
    """The details of a new pointer; an absent field is None."""
    return Details(
        webhook=parse_webhook(payload.get("webhook")),
        description=parse_description(payload.get("description")),
        metadata=parse_metadata(payload.get("metadata")),
    )


def parse_detail_changes(payload: Mapping[str, object]) -> DetailChanges:
    """The details an update sets: an absent field is kept, a null one removed."""
    return DetailChanges(
        webhook=_parse_given(payload, "webhook", parse_webhook),
        description=_parse_given(payload, "description", parse_description),
        metadata=_parse_given(payload, "metadata", parse_metadata),
    )


def parse_webhook(value: object) -> str | None:
    """An http(s) URL with a host, or None."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_WEBHOOK_LENGTH:
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = None
        if parts is not None and parts.scheme in ("http", "https") and parts.hostname:
            return value
    raise InputError("invalid-webhook", "webhook must be an http(s) URL.", field="webhook")


def parse_description(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_DESCRIPTION_LENGTH:
        return value
    raise InputError(
        "invalid-description",
        f"description is text of at most {MAX_DESCRIPTION_LENGTH} characters.",
        field="description",
    )


def parse_metadata(value: object) -> dict[str, object] | None:
    """A JSON object of at most 8 KiB, as plain JSON values (exact decimals become strings)."""
    if value is None:
        return None
    if isinstance(value, dict):
        text = json.dumps(value, default=str)
        if len(text) <= MAX_METADATA_BYTES:
            metadata: dict[str, object] = json.loads(text)
            return metadata
    raise InputError("invalid-metadata", "metadata is a JSON object of at most 8 KiB.", field="metadata")


def _parse_given(payload: Mapping[str, object], name: str, parse: Callable[[object], _T]) -> _T | Keep:
    return parse(payload[name]) if name in payload else KEEP
