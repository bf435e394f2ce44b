"""A pointer's webhook, description and metadata as they arrive in HTTP bodies, validated.

They are not agreement terms: changing them never makes a new agreement version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Final, TypeVar

from spsp_pull.domain.errors import InputError
from spsp_pull.domain.outbound_targets import TargetPolicy, TargetRefused, read_target_url

_T = TypeVar("_T")

MAX_URL_LENGTH = 2000
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


def parse_details(payload: Mapping[str, object], targets: TargetPolicy) -> Details:
    """The details of a new pointer; an absent field is None. `targets` says where a webhook may point."""
    return Details(
        webhook=parse_webhook(payload.get("webhook"), targets),
        description=parse_description(payload.get("description")),
        metadata=parse_metadata(payload.get("metadata")),
    )


def parse_detail_changes(payload: Mapping[str, object], targets: TargetPolicy) -> DetailChanges:
    """The details an update sets: an absent field is kept, a null one removed."""
    return DetailChanges(
        webhook=_parse_given(payload, "webhook", partial(parse_webhook, targets=targets)),
        description=_parse_given(payload, "description", parse_description),
        metadata=_parse_given(payload, "metadata", parse_metadata),
    )


def parse_webhook(value: object, targets: TargetPolicy) -> str | None:
    """An http(s) URL with a host that `targets` does not refuse by its spelling, or None."""
    return parse_target_url(
        value, targets, field="webhook", invalid_code="invalid-webhook", refused_code="webhook-target-refused"
    )


def parse_target_url(
    value: object, targets: TargetPolicy, *, field: str, invalid_code: str, refused_code: str
) -> str | None:
    """A URL the server will POST to (as given), or None: http(s) with a host, at most 2,000 characters, and
    not an address (in any spelling) or a loopback name that `targets` refuses. Names are checked again
    when resolved, at delivery."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_URL_LENGTH:
        try:
            target = read_target_url(value)
        except ValueError:
            target = None
        if target is not None:
            try:
                targets.check_url(target)
            except TargetRefused as refused:
                raise InputError(
                    refused_code, f"{field} must not point at internal addresses: {refused}", field=field
                ) from None
            return value
    raise InputError(invalid_code, f"{field} must be an http(s) URL.", field=field)


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
