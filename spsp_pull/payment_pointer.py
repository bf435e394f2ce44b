"""Payment pointers (RFC 0026) and how a client reaches them.

`$host/path` resolves to `https://host/path` (`/.well-known/pay` for an empty path), except on a loopback
host (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`), where it resolves to `http://`: a server on your own
machine is reached without a certificate, as browsers and most development tools treat loopback (a loopback
connection never leaves the machine). So the pointer a local `spsp-pull serve` prints,
`$localhost:6000/<token>`, works as printed (the payee asks a loopback server that drops the plain
request once more over https: `serve --tls-self-signed`). Plain `http(s)://` URLs are taken as they are.

Over https a client trusts the system's certificate authorities (SSL_CERT_FILE replaces them) and the
certificate of a local `serve --tls-self-signed`: `tls-cert.pem` in the data directory (SPSP_DATA_DIR, default
./spsp-data), found as the CLI finds the admin key.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from spsp_pull.config import DEFAULT_DATA_DIR
from spsp_pull.tls import CERT_FILE


class InvalidPaymentPointer(ValueError):
    pass


def resolve(pointer: str) -> str:
    if pointer.startswith(("http://", "https://")):
        parts = urlsplit(pointer)
        if not parts.hostname:
            raise InvalidPaymentPointer(f"{pointer!r} has no host")
        return pointer
    if not pointer.startswith("$") or not pointer.isascii():
        raise InvalidPaymentPointer(
            f"{pointer!r} is neither a $payment.pointer nor an http(s) URL"
            " (quote a $pointer in the shell: '$host/path')"
        )
    parts = urlsplit("https://" + pointer[1:])
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidPaymentPointer(f"{pointer!r} is not a payment pointer (RFC 0026)")
    path = parts.path if parts.path not in ("", "/") else "/.well-known/pay"
    scheme = "http" if is_loopback_host(parts.hostname) else "https"
    return f"{scheme}://{parts.netloc}{path}"


def pointer_token(text: str) -> str:
    """The token in a pointer (`$host/<token>`) or its URL; anything else is taken as the token itself."""
    if text.startswith(("$", "http://", "https://")):
        return urlsplit(resolve(text)).path.rstrip("/").rsplit("/", 1)[-1]
    return text


def is_loopback_host(hostname: str) -> bool:
    """`localhost`, a name under `.localhost` (RFC 6761), or a loopback IP address."""
    name = hostname.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def client_ssl_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """The system's trust store, plus the local server's self-signed certificate when there is one."""
    env = os.environ if env is None else env
    context = ssl.create_default_context()
    local_certificate = Path(env.get("SPSP_DATA_DIR") or DEFAULT_DATA_DIR) / CERT_FILE
    if local_certificate.is_file():
        context.load_verify_locations(cafile=str(local_certificate))
    return context
