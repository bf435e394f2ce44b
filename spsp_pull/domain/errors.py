"""The one error type for a request refused, anywhere from the domain to the HTTP API."""

from __future__ import annotations


class InputError(Exception):
    """Input that cannot be accepted, or a request that cannot be done now; nothing was changed.

    `code` is stable kebab-case (published in API errors, never renamed), `detail` a sentence for humans,
    `status` the HTTP status the API answers with, `field` the offending input field when there is one.
    """

    def __init__(self, code: str, detail: str, *, status: int = 422, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.field = field

    def __repr__(self) -> str:
        return f"InputError({self.code!r}, {self.detail!r}, status={self.status}, field={self.field!r})"
