"""Payment pointers (RFC 0026): `$host/path` resolves to `https://host/path` (`/.well-known/pay` for an
empty path). Plain `http(s)://` URLs are taken as they are (useful on loopback)."""

from __future__ import annotations

from urllib.parse import urlsplit


class InvalidPaymentPointer(ValueError):
    pass


def resolve(pointer: str) -> str:
    if pointer.startswith(("http://", "https://")):
        parts = urlsplit(pointer)
        if not parts.hostname:
            raise InvalidPaymentPointer(f"{pointer!r} has no host")
        return pointer
    if not pointer.startswith("$") or not pointer.isascii():
        raise InvalidPaymentPointer(f"{pointer!r} is neither a $payment.pointer nor an http(s) URL")
    parts = urlsplit("https://" + pointer[1:])
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidPaymentPointer(f"{pointer!r} is not a payment pointer (RFC 0026)")
    path = parts.path if parts.path not in ("", "/") else "/.well-known/pay"
    return f"https://{parts.netloc}{path}"
