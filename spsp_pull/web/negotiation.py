"""Whether a request's `Accept` header prefers an HTML page to the SPSP (JSON) answer.

Only a client that ranks HTML strictly above every JSON type it would take gets the page: browsers
(`text/html,…,*/*;q=0.8`) do; SPSP clients, `*/*`, no header, and ties get the SPSP answer as before.
"""

from __future__ import annotations

import re
from decimal import Decimal

HTML_TYPES = ("text/html", "application/xhtml+xml")
SPSP_TYPES = ("application/spsp4+json", "application/spsp+json", "application/json")
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_NONE = Decimal(0)


def prefers_html(accept: str | None) -> bool:
    if accept is None or "html" not in accept.lower():
        return False  # the SPSP clients' case, decided without parsing
    ranges = media_ranges(accept)
    html = max(quality(ranges, media) for media in HTML_TYPES)
    return html > _NONE and html > max(quality(ranges, media) for media in SPSP_TYPES)


def media_ranges(accept: str) -> dict[str, Decimal]:
    """`type/subtype` (lower case, maybe with `*`) to its quality; ranges with a malformed q are left out."""
    ranges: dict[str, Decimal] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.count("/") != 1:
            continue
        weight = Decimal(1)
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                weight = Decimal(value) if _QVALUE.fullmatch(value) else Decimal(-1)
        if weight >= _NONE:
            ranges[media.lower()] = max(weight, ranges.get(media.lower(), _NONE))
    return ranges


def quality(ranges: dict[str, Decimal], media: str) -> Decimal:
    """The quality the most specific matching range gives `media` (RFC 9110 §12.5.1)."""
    kind = media.split("/")[0]
    for candidate in (media, f"{kind}/*", "*/*"):
        if candidate in ranges:
            return ranges[candidate]
    return _NONE
