"""Offline pull pointers: agreements a wallet signs itself as a JWT, verified here without any I/O.

Accepted algorithms:

* `HS256` with the secret the server shares with its wallet, compatible with the JavaScript pull server.
  These pointers belong to the admin account (`account_id` None). A `kid` that names a registered public
  key is refused as algorithm confusion: a public key is never used as an HMAC secret.
* `ES256` (P-256) and `EdDSA` (Ed25519) with a public key an account registered, chosen by the header
  `kid`; the key's own algorithm must be the header's. The server can verify these, never mint them.

Everything else is refused with an `OfflinePointerError` (401) carrying a stable code. Headers that could
bring in keys or change how the token is read (`jwk`, `jku`, `x5c`, ...) are ignored; `crit` and `b64`
are refused. Base64url must be canonical, so one signed text has one spelling.

Claims are the agreement fields (numbers or strings, as for an online pointer), plus `webhook`,
`description`, `metadata` and the registered JWT claims. `exp` and `nbf` bound when the token may be
registered; `iat` is the default `start` (else the verification time). The pointer's identity (`jwt_id`)
is the `jti` claim, or else `"sha256:"` + the hex SHA-256 of the signed text (`header.payload`): the same
signed agreement always registers as the same pointer, however its signature is re-encoded (ECDSA
signatures are malleable, so hashing the whole token would let a payee register it twice).

A `jti` is unique per signer, not across the server. The signer is the key that verified the token, with the
account that owns it: `"kid:<kid>"` for an ES256 / EdDSA key (with the account that registered it), and
`"hs256"` for the server-wide HS256 secret (with the admin account; wallets that share the secret share one
`jti` namespace, across rotations of the secret too). So another account's tokens, whatever `jti` they carry,
never name, block or revoke this signer's pointers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.types import Options

from spsp_pull.domain.agreement import Terms
from spsp_pull.domain.clock import isoformat_z, utc
from spsp_pull.domain.details_input import parse_details
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.outbound_targets import PUBLIC_ONLY, TargetPolicy
from spsp_pull.domain.terms_input import parse_terms

MAX_TOKEN_LENGTH = 8 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_KID_LENGTH = 200
MAX_JTI_LENGTH = 200
MIN_HS256_SECRET_BYTES = 32  # RFC 7518 section 3.2: an HS256 key at least as long as the hash output
HS256_SIGNER = "hs256"

Algorithm = Literal["ES256", "EdDSA"]
ASYMMETRIC_ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "EdDSA")
ALGORITHMS = ("HS256", *ASYMMETRIC_ALGORITHMS)

VerifyingKey = ec.EllipticCurvePublicKey | Ed25519PublicKey
SigningKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")
_NUMERIC_DATES = ("exp", "nbf", "iat")
_DECODE_OPTIONS: Options = {
    # Signatures only: times are checked against the injected `now`, the rest by this module.
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


class OfflinePointerError(InputError):
    """A token that is not an acceptable offline pointer. `inner` is the claim error behind
    'jwt-claims-invalid'."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int = 401,
        field: str | None = None,
        inner: InputError | None = None,
    ) -> None:
        super().__init__(code, detail, status=status, field=field)
        self.inner = inner


@dataclass(frozen=True, slots=True)
class PublicJwtKey:
    """A registered verification key; `public_key` is its PEM (SubjectPublicKeyInfo)."""

    kid: str
    algorithm: Algorithm
    account_id: int
    public_key: str


@dataclass(frozen=True, slots=True)
class SignedToken:
    """A token whose header and signature have been checked, and nothing more."""

    jwt_id: str
    account_id: int | None
    signer: str
    algorithm: str
    kid: str | None
    claims: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OfflinePointer:
    """A verified offline pointer, ready to register. `account_id` None: signed with the server-wide HS256
    secret (owned by the admin account). `signer` scopes `jwt_id` (see the module docstring). `expires_at`
    is the token's `exp`."""

    jwt_id: str
    account_id: int | None
    signer: str
    terms: Terms
    webhook: str | None
    description: str | None
    expires_at: datetime | None
    metadata: dict[str, object] | None = None


def verify_offline_pointer(
    token: str,
    *,
    hs256_secret: str | None,
    resolve_key: Callable[[str], PublicJwtKey | None],
    now: datetime,
) -> OfflinePointer:
    """Verify a token completely: header, signature, `exp` / `nbf` at `now`, and the agreement claims."""
    signed = authenticate_offline_token(token, hs256_secret=hs256_secret, resolve_key=resolve_key)
    return offline_pointer_from(signed, now)


def authenticate_offline_token(
    token: str,
    *,
    hs256_secret: str | None,
    resolve_key: Callable[[str], PublicJwtKey | None],
) -> SignedToken:
    """Check the header and the signature and establish the pointer's identity; no time or claim checks.

    Enough to find an already registered pointer; `offline_pointer_from` does the rest.
    """
    header, signing_input = _split(token)
    algorithm, kid = _header_algorithm_and_kid(header)
    account_id: int | None
    key: str | VerifyingKey
    if algorithm == "HS256":
        if kid is not None and resolve_key(kid) is not None:
            raise OfflinePointerError(
                "jwt-alg-confusion", f"kid {kid!r} names a public key; it cannot verify an HS256 token"
            )
        if not hs256_secret or hs256_secret_problem(hs256_secret) is not None:
            # A secret too short to trust (refused at start by the configuration) verifies nothing.
            raise OfflinePointerError("jwt-hs256-disabled", "HS256 offline pointers are not enabled here")
        key, account_id = hs256_secret, None
    else:
        if kid is None:
            raise OfflinePointerError("jwt-missing-kid", f"an {algorithm} token must name its key with kid")
        public = resolve_key(kid)
        if public is None or public.kid != kid:
            raise OfflinePointerError("jwt-unknown-kid", f"no key is registered as kid {kid!r}")
        if public.algorithm != algorithm:
            raise OfflinePointerError(
                "jwt-alg-confusion", f"key {kid!r} is an {public.algorithm} key, the token says {algorithm}"
            )
        try:
            key = load_public_key(public.public_key, public.algorithm)
        except InputError:
            raise OfflinePointerError(
                "jwt-alg-confusion", f"key {kid!r} is not a usable {algorithm} key"
            ) from None
        account_id = public.account_id
    claims = _decode(token, key, algorithm)
    return SignedToken(
        jwt_id=_jwt_id(claims, signing_input),
        account_id=account_id,
        signer=HS256_SIGNER if algorithm == "HS256" else key_signer(kid),
        algorithm=algorithm,
        kid=kid,
        claims=claims,
    )


def offline_pointer_from(
    signed: SignedToken, now: datetime, targets: TargetPolicy = PUBLIC_ONLY
) -> OfflinePointer:
    """The agreement an authenticated token carries, if the token may be used at `now`."""
    now = utc(now)
    dates = {name: _numeric_date(signed.claims, name) for name in _NUMERIC_DATES}
    expires_at, not_before, issued_at = dates["exp"], dates["nbf"], dates["iat"]
    if expires_at is not None and now >= expires_at:
        raise OfflinePointerError("jwt-expired", f"the token expired at {isoformat_z(expires_at)}")
    if not_before is not None and now < not_before:
        raise OfflinePointerError("jwt-not-yet-valid", f"the token is valid from {isoformat_z(not_before)}")
    payload = dict(signed.claims)
    if payload.get("start") is None:
        payload["start"] = (issued_at or now).isoformat()
    try:
        terms = parse_terms(payload, now)
        details = parse_details(payload, targets)
    except InputError as error:
        raise _claims_invalid(error) from None
    return OfflinePointer(
        jwt_id=signed.jwt_id,
        account_id=signed.account_id,
        signer=signed.signer,
        terms=terms,
        webhook=details.webhook,
        description=details.description,
        expires_at=expires_at,
        metadata=details.metadata,
    )


def key_signer(kid: str | None) -> str:
    """The signer of tokens verified by the registered key `kid` (its account completes the scope)."""
    return f"kid:{kid}"


def hs256_secret_problem(secret: str | bytes) -> str | None:
    """Why `secret` cannot be the HS256 secret, or None if it can."""
    size = len(secret.encode() if isinstance(secret, str) else secret)
    if size < MIN_HS256_SECRET_BYTES:
        return f"must be at least {MIN_HS256_SECRET_BYTES} bytes (it has {size})"
    return None


def token_kid(token: str) -> str | None:
    """The header `kid`, unverified: which key to load before verifying. Malformed tokens are refused."""
    header, _ = _split(token)
    return _header_algorithm_and_kid(header)[1]


def load_public_key(pem: str, algorithm: str) -> VerifyingKey:
    """A PEM public key that fits `algorithm` (P-256 for ES256, Ed25519 for EdDSA)."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InputError(
            "invalid-public-key", "publicKey is not a PEM public key", field="publicKey"
        ) from None
    if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return key
    elif algorithm == "EdDSA" and isinstance(key, Ed25519PublicKey):
        return key
    elif algorithm not in ASYMMETRIC_ALGORITHMS:
        raise InputError(
            "invalid-jwt-algorithm",
            f"algorithm must be one of {', '.join(ASYMMETRIC_ALGORITHMS)}",
            field="algorithm",
        )
    expected = "an EC P-256" if algorithm == "ES256" else "an Ed25519"
    raise InputError(
        "public-key-algorithm-mismatch", f"{algorithm} needs {expected} public key", field="publicKey"
    )


def public_key_pem(key: VerifyingKey) -> str:
    """The canonical PEM (SubjectPublicKeyInfo) of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def mint_offline_pointer(
    claims: Mapping[str, object],
    *,
    algorithm: str,
    secret: str | bytes | None = None,
    private_key: SigningKey | str | bytes | None = None,
    kid: str | None = None,
) -> str:
    """Sign agreement claims as an offline pointer token.

    HS256 takes `secret` (at least 32 bytes); ES256 / EdDSA take `private_key` (a key object or an
    unencrypted PEM). Datetimes are written as NumericDates for `exp` / `nbf` / `iat` and as ISO 8601 text
    for anything else.
    """
    key: str | bytes | SigningKey
    if algorithm == "HS256":
        if secret is None or private_key is not None:
            raise ValueError("HS256 signs with a secret (and no private key)")
        problem = hs256_secret_problem(secret)
        if problem is not None:
            raise ValueError(f"the HS256 secret {problem}")
        key = secret
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        if private_key is None or secret is not None:
            raise ValueError(f"{algorithm} signs with a private key (and no secret)")
        key = _signing_key(private_key, algorithm)
    else:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    payload = {
        name: isoformat_z(value) if isinstance(value, datetime) and name not in _NUMERIC_DATES else value
        for name, value in claims.items()
    }
    headers = None if kid is None else {"kid": kid}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def _split(token: str) -> tuple[dict[str, Any], bytes]:
    """The decoded header and the signed text of a compact JWS, or 'jwt-malformed'."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed(f"a token is a string of at most {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _malformed("a token is three base64url parts separated by dots")
    raw_header, _, _ = (_base64url(part) for part in parts)
    try:
        header = json.loads(raw_header)
    except (ValueError, RecursionError):
        raise _malformed("the header is not JSON") from None
    if not isinstance(header, dict):
        raise _malformed("the header is not a JSON object")
    return header, f"{parts[0]}.{parts[1]}".encode()


def _base64url(part: str) -> bytes:
    if not _BASE64URL.match(part) or len(part) % 4 == 1:
        raise _malformed("a token part is not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (ValueError, binascii.Error):
        raise _malformed("a token part is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != part:
        raise _malformed("a token part is not canonical base64url")
    return raw


def _header_algorithm_and_kid(header: Mapping[str, Any]) -> tuple[str, str | None]:
    algorithm = header.get("alg")
    if not isinstance(algorithm, str):
        raise _malformed("the header has no alg")
    if "crit" in header or "b64" in header:
        raise _malformed("critical header extensions are not supported")
    if algorithm.lower() == "none":
        raise OfflinePointerError("jwt-alg-none", "unsigned tokens (alg: none) are refused")
    if algorithm not in ALGORITHMS:
        raise OfflinePointerError(
            "jwt-alg-not-allowed", f"alg {algorithm[:20]!r} is not one of {', '.join(ALGORITHMS)}"
        )
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KID_LENGTH):
        raise _malformed(f"kid must be a string of 1 to {MAX_KID_LENGTH} characters")
    return algorithm, kid


def _decode(token: str, key: str | VerifyingKey, algorithm: str) -> dict[str, Any]:
    try:
        return jwt.decode(token, key, algorithms=[algorithm], options=_DECODE_OPTIONS)
    except jwt.InvalidSignatureError:
        raise OfflinePointerError("jwt-bad-signature", "the signature does not verify") from None
    except jwt.InvalidKeyError:
        raise OfflinePointerError("jwt-alg-confusion", f"the key cannot verify {algorithm}") from None
    except jwt.InvalidTokenError:
        raise _malformed("the token cannot be decoded") from None


def _jwt_id(claims: Mapping[str, Any], signing_input: bytes) -> str:
    if "jti" not in claims:
        return "sha256:" + hashlib.sha256(signing_input).hexdigest()
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise _claims_invalid(
            InputError(
                "invalid-jti", f"jti must be a string of 1 to {MAX_JTI_LENGTH} characters", field="jti"
            )
        )
    return jti


def _numeric_date(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # The JSON parser gives a fractional NumericDate as a binary float: read it as the decimal it was.
        seconds = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
        if seconds.is_finite():
            try:
                return _EPOCH + timedelta(microseconds=int(seconds * 1_000_000))
            except OverflowError:
                pass
    raise _claims_invalid(
        InputError("invalid-numeric-date", f"{name} must be seconds since 1970 (a NumericDate)", field=name)
    )


def _signing_key(private_key: SigningKey | str | bytes, algorithm: str) -> SigningKey:
    loaded: object = private_key
    if isinstance(private_key, str | bytes):
        data = private_key.encode() if isinstance(private_key, str) else private_key
        loaded = serialization.load_pem_private_key(data, password=None)
    if algorithm == "ES256" and isinstance(loaded, ec.EllipticCurvePrivateKey):
        if isinstance(loaded.curve, ec.SECP256R1):
            return loaded
    elif algorithm == "EdDSA" and isinstance(loaded, Ed25519PrivateKey):
        return loaded
    raise ValueError(f"the private key does not fit {algorithm}")


def _malformed(detail: str) -> OfflinePointerError:
    return OfflinePointerError("jwt-malformed", detail)


def _claims_invalid(error: InputError) -> OfflinePointerError:
    where = f" ({error.field})" if error.field else ""
    return OfflinePointerError(
        "jwt-claims-invalid",
        f"claim rejected: {error.code}{where}: {error.detail}",
        field=error.field,
        inner=error,
    )
