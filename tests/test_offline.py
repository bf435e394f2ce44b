"""Offline (JWT) pointer verification: good tokens, and every forged or broken one refused by its code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from spsp_pull.domain.duration import Interval
from spsp_pull.offline import (
    MAX_TOKEN_LENGTH,
    OfflinePointer,
    OfflinePointerError,
    PublicJwtKey,
    authenticate_offline_token,
    hs256_secret_problem,
    mint_offline_pointer,
    public_key_pem,
    token_kid,
    verify_offline_pointer,
)

NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
SECRET = "shared-wallet-secret-of-32-bytes-or-more"
CLAIMS: dict[str, object] = {
    "amount": 1000,
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1M",
    "cycles": 12,
    "cap": False,
}

ES_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = Ed25519PrivateKey.generate()
ES_PEM = public_key_pem(ES_KEY.public_key())
ED_PEM = public_key_pem(ED_KEY.public_key())
KEYS = {
    "wallet-es": PublicJwtKey(kid="wallet-es", algorithm="ES256", account_id=7, public_key=ES_PEM),
    "wallet-ed": PublicJwtKey(kid="wallet-ed", algorithm="EdDSA", account_id=8, public_key=ED_PEM),
}
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: object) -> str:
    return b64(json.dumps(value).encode())


def forge(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would: any header, any signature."""
    return f"{segment(header)}.{segment(claims)}.{b64(signature)}"


def forge_hs256(header: dict[str, object], claims: dict[str, object], secret: bytes) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def verify(token: str, *, secret: str | None = SECRET, now: datetime = NOW) -> OfflinePointer:
    return verify_offline_pointer(token, hs256_secret=secret, resolve_key=KEYS.get, now=now)


def refused(token: str, *, secret: str | None = SECRET, now: datetime = NOW) -> OfflinePointerError:
    with pytest.raises(OfflinePointerError) as caught:
        verify(token, secret=secret, now=now)
    assert caught.value.status == 401
    return caught.value


def hs256(claims: dict[str, object], **extra: object) -> str:
    return mint_offline_pointer({**claims, **extra}, algorithm="HS256", secret=SECRET)


def es256(claims: dict[str, object], kid: str | None = "wallet-es", **extra: object) -> str:
    return mint_offline_pointer({**claims, **extra}, algorithm="ES256", private_key=ES_KEY, kid=kid)


def eddsa(claims: dict[str, object], kid: str | None = "wallet-ed", **extra: object) -> str:
    return mint_offline_pointer({**claims, **extra}, algorithm="EdDSA", private_key=ED_KEY, kid=kid)


def signing_input_id(token: str) -> str:
    header, payload, _ = token.split(".")
    return "sha256:" + hashlib.sha256(f"{header}.{payload}".encode()).hexdigest()


# --- accepted tokens -------------------------------------------------------------------------------


def test_hs256_with_number_claims_is_an_admin_pointer_starting_at_iat() -> None:
    issued = NOW - timedelta(hours=3)
    token = hs256(CLAIMS, iat=int(issued.timestamp()))
    pointer = verify(token)
    assert pointer.account_id is None
    assert pointer.terms.amount == 1000
    assert (pointer.terms.asset_code, pointer.terms.asset_scale) == ("USD", 2)
    assert pointer.terms.interval == Interval(1, 0, 0)
    assert (pointer.terms.cycles, pointer.terms.cap) == (12, False)
    assert pointer.terms.start == issued
    assert pointer.terms.expiry is None
    assert (pointer.webhook, pointer.description, pointer.expires_at, pointer.metadata) == (
        None,
        None,
        None,
        None,
    )


def test_hs256_with_string_claims_as_the_js_server_signs_them() -> None:
    token = hs256(
        {
            "amount": "250",
            "assetCode": "XRP",
            "assetScale": "9",
            "interval": "P0Y0M7D",
            "cycles": "3",
            "cap": "true",
            "expiry": "2024-06-01T00:00:00.000Z",
        }
    )
    terms = verify(token).terms
    assert (terms.amount, terms.asset_code, terms.asset_scale, terms.cycles, terms.cap) == (
        250,
        "XRP",
        9,
        3,
        True,
    )
    assert terms.interval == Interval(0, 7, 0)
    assert terms.expiry == datetime(2024, 6, 1, tzinfo=UTC)


def test_a_fractional_iat_is_read_to_the_microsecond() -> None:
    issued = (NOW - timedelta(hours=3)).replace(microsecond=123_457)
    token = hs256(CLAIMS, iat=int(issued.timestamp()) + 0.123457)
    assert verify(token).terms.start == issued


def test_start_defaults_to_now_without_iat() -> None:
    assert verify(hs256(CLAIMS)).terms.start == NOW


def test_explicit_start_wins_over_iat() -> None:
    token = hs256(CLAIMS, iat=int(NOW.timestamp()), start="2024-02-01T00:00:00Z")
    assert verify(token).terms.start == datetime(2024, 2, 1, tzinfo=UTC)


def test_extras_and_exp_are_carried() -> None:
    exp = NOW + timedelta(days=1)
    token = hs256(
        CLAIMS,
        webhook="https://shop.example/hooks/pull",
        description="CoolSubscription",
        metadata={"order": "A-17"},
        exp=exp,
    )
    pointer = verify(token)
    assert pointer.webhook == "https://shop.example/hooks/pull"
    assert pointer.description == "CoolSubscription"
    assert pointer.metadata == {"order": "A-17"}
    assert pointer.expires_at == exp


def test_jti_is_the_pointer_id() -> None:
    assert verify(hs256(CLAIMS, jti="order-17")).jwt_id == "order-17"


def test_without_jti_the_id_is_the_hash_of_the_signed_text() -> None:
    token = hs256(CLAIMS)
    pointer = verify(token)
    assert pointer.jwt_id == signing_input_id(token)
    assert verify(token).jwt_id == pointer.jwt_id


def test_es256_pointer_belongs_to_the_keys_account() -> None:
    pointer = verify(es256(CLAIMS))
    assert pointer.account_id == 7
    assert pointer.terms.amount == 1000


def test_eddsa_pointer_belongs_to_the_keys_account() -> None:
    assert verify(eddsa(CLAIMS)).account_id == 8


def test_es256_accepted_without_any_hs256_secret() -> None:
    assert verify(es256(CLAIMS), secret=None).account_id == 7


def test_malleated_ecdsa_signature_keeps_the_same_pointer_id() -> None:
    token = es256(CLAIMS)
    head, body, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    twin = f"{head}.{body}.{b64(r.to_bytes(32, 'big') + (P256_ORDER - s).to_bytes(32, 'big'))}"
    assert twin != token
    assert verify(twin).jwt_id == verify(token).jwt_id == signing_input_id(token)


def test_hs256_kid_that_names_no_public_key_is_ignored() -> None:
    token = mint_offline_pointer(CLAIMS, algorithm="HS256", secret=SECRET, kid="wallet-secret-v2")
    assert verify(token).account_id is None


def test_nbf_equal_to_now_is_valid() -> None:
    assert verify(hs256(CLAIMS, nbf=int(NOW.timestamp()))).terms.amount == 1000


def test_token_kid_reads_the_header_unverified() -> None:
    assert token_kid(es256(CLAIMS)) == "wallet-es"
    assert token_kid(hs256(CLAIMS)) is None


def test_authentication_alone_ignores_time() -> None:
    token = hs256(CLAIMS, jti="old", exp=int((NOW - timedelta(days=30)).timestamp()))
    signed = authenticate_offline_token(token, hs256_secret=SECRET, resolve_key=KEYS.get)
    assert (signed.jwt_id, signed.account_id, signed.algorithm) == ("old", None, "HS256")


# --- malformed -------------------------------------------------------------------------------------


def test_two_parts_are_malformed() -> None:
    head, body, _ = hs256(CLAIMS).split(".")
    assert refused(f"{head}.{body}").code == "jwt-malformed"


def test_four_parts_are_malformed() -> None:
    assert refused(hs256(CLAIMS) + ".AAAA").code == "jwt-malformed"


def test_non_base64url_characters_are_malformed() -> None:
    head, body, signature = hs256(CLAIMS).split(".")
    assert refused(f"{head}.{body}+/.{signature}").code == "jwt-malformed"


def test_header_that_is_not_json_is_malformed() -> None:
    _, body, signature = hs256(CLAIMS).split(".")
    assert refused(f"{b64(b'{alg: HS256')}.{body}.{signature}").code == "jwt-malformed"


def test_header_that_is_a_json_array_is_malformed() -> None:
    _, body, signature = hs256(CLAIMS).split(".")
    assert refused(f"{segment(['HS256'])}.{body}.{signature}").code == "jwt-malformed"


def test_header_without_alg_is_malformed() -> None:
    assert refused(forge_hs256({"typ": "JWT"}, CLAIMS, SECRET.encode())).code == "jwt-malformed"


def test_non_canonical_base64url_is_malformed() -> None:
    token = hs256(CLAIMS)
    head, body, signature = token.split(".")
    # 32 bytes encode to 43 characters; the last carries 2 unused bits, here set to 1.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(signature[-1]) | 1]
    if last == signature[-1]:
        last = alphabet[alphabet.index(signature[-1]) | 2]
    twin = f"{head}.{body}.{signature[:-1]}{last}"
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "=") == base64.urlsafe_b64decode(signature + "=")
    assert refused(twin).code == "jwt-malformed"


def test_payload_that_is_not_json_is_malformed() -> None:
    header = segment({"alg": "HS256", "typ": "JWT"})
    body = b64(b"not json")
    mac = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert refused(f"{header}.{body}.{b64(mac)}").code == "jwt-malformed"


def test_critical_header_extension_is_malformed() -> None:
    token = forge_hs256({"alg": "HS256", "crit": ["b64"], "b64": False}, CLAIMS, SECRET.encode())
    assert refused(token).code == "jwt-malformed"


def test_token_longer_than_8_kib_is_malformed_even_when_signed() -> None:
    token = hs256(CLAIMS, metadata={"padding": "x" * MAX_TOKEN_LENGTH})
    assert len(token) > MAX_TOKEN_LENGTH
    assert refused(token).code == "jwt-malformed"


def test_non_string_kid_is_malformed() -> None:
    assert refused(forge({"alg": "ES256", "kid": 7}, CLAIMS, b"\0" * 64)).code == "jwt-malformed"


# --- algorithms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg: str) -> None:
    assert refused(forge({"alg": alg, "typ": "JWT"}, CLAIMS)).code == "jwt-alg-none"


def test_alg_none_with_a_kid_and_a_signature_is_refused() -> None:
    token = forge({"alg": "none", "kid": "wallet-es"}, CLAIMS, b"\1" * 64)
    assert refused(token).code == "jwt-alg-none"


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_not_allowed(alg: str) -> None:
    token = jwt.encode(CLAIMS, SECRET * 4, algorithm=alg)
    assert refused(token).code == "jwt-alg-not-allowed"


def test_rs256_is_not_allowed() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(CLAIMS, rsa_key, algorithm="RS256", headers={"kid": "wallet-es"})
    assert refused(token).code == "jwt-alg-not-allowed"


def test_es384_is_not_allowed() -> None:
    token = jwt.encode(CLAIMS, ec.generate_private_key(ec.SECP384R1()), algorithm="ES384")
    assert refused(token).code == "jwt-alg-not-allowed"


def test_hs256_signed_with_the_ec_public_key_pem_is_confusion() -> None:
    token = forge_hs256({"alg": "HS256", "kid": "wallet-es"}, CLAIMS, ES_PEM.encode())
    assert refused(token).code == "jwt-alg-confusion"


def test_hs256_signed_with_the_ed25519_public_key_pem_is_confusion() -> None:
    token = forge_hs256({"alg": "HS256", "kid": "wallet-ed"}, CLAIMS, ED_PEM.encode())
    assert refused(token).code == "jwt-alg-confusion"


def test_hs256_naming_a_public_key_is_confusion_even_with_hs256_disabled() -> None:
    token = forge_hs256({"alg": "HS256", "kid": "wallet-es"}, CLAIMS, ES_PEM.encode())
    assert refused(token, secret=None).code == "jwt-alg-confusion"


def test_hs256_signed_with_a_public_key_pem_without_kid_fails_the_signature() -> None:
    token = forge_hs256({"alg": "HS256"}, CLAIMS, ES_PEM.encode())
    assert refused(token).code == "jwt-bad-signature"


def test_es256_header_naming_an_eddsa_key_is_confusion() -> None:
    token = es256(CLAIMS, kid="wallet-ed")
    assert refused(token).code == "jwt-alg-confusion"


def test_eddsa_header_naming_an_es256_key_is_confusion() -> None:
    token = eddsa(CLAIMS, kid="wallet-es")
    assert refused(token).code == "jwt-alg-confusion"


def test_hs256_disabled_without_a_secret() -> None:
    assert refused(hs256(CLAIMS), secret=None).code == "jwt-hs256-disabled"


def test_hs256_disabled_with_an_empty_secret() -> None:
    token = forge_hs256({"alg": "HS256"}, CLAIMS, b"")
    assert refused(token, secret="").code == "jwt-hs256-disabled"


def test_hs256_secret_of_31_bytes_verifies_nothing() -> None:
    short = "s" * 31
    token = forge_hs256({"alg": "HS256"}, CLAIMS, short.encode())
    assert refused(token, secret=short).code == "jwt-hs256-disabled"
    assert verify(forge_hs256({"alg": "HS256"}, CLAIMS, b"s" * 32), secret="s" * 32).account_id is None


def test_hs256_secret_length_is_counted_in_bytes() -> None:
    assert hs256_secret_problem("é" * 16) is None  # 16 characters, 32 bytes of UTF-8
    assert hs256_secret_problem("e" * 31) == "must be at least 32 bytes (it has 31)"
    assert hs256_secret_problem(b"e" * 32) is None


def test_mint_refuses_a_short_hs256_secret() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint_offline_pointer(CLAIMS, algorithm="HS256", secret="shared-wallet-secret")


def test_signer_is_the_hs256_secret_or_the_key() -> None:
    assert verify(hs256(CLAIMS)).signer == "hs256"
    assert verify(es256(CLAIMS)).signer == "kid:wallet-es"
    assert verify(eddsa(CLAIMS)).signer == "kid:wallet-ed"


# --- keys and signatures ---------------------------------------------------------------------------


def test_unknown_kid() -> None:
    assert refused(es256(CLAIMS, kid="someone-else")).code == "jwt-unknown-kid"


def test_missing_kid() -> None:
    assert refused(es256(CLAIMS, kid=None)).code == "jwt-missing-kid"


def test_embedded_jwk_header_is_never_used_as_the_key() -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    embedded = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    token = jwt.encode(CLAIMS, attacker, algorithm="ES256", headers={"kid": "wallet-es", "jwk": embedded})
    assert refused(token).code == "jwt-bad-signature"
    token = jwt.encode(CLAIMS, attacker, algorithm="ES256", headers={"kid": "attacker", "jwk": embedded})
    assert refused(token).code == "jwt-unknown-kid"


def test_es256_signed_with_another_key_under_the_wallets_kid() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = mint_offline_pointer(CLAIMS, algorithm="ES256", private_key=other, kid="wallet-es")
    assert refused(token).code == "jwt-bad-signature"


def test_eddsa_signed_with_another_key_under_the_wallets_kid() -> None:
    other = Ed25519PrivateKey.generate()
    token = mint_offline_pointer(CLAIMS, algorithm="EdDSA", private_key=other, kid="wallet-ed")
    assert refused(token).code == "jwt-bad-signature"


def test_hs256_with_the_wrong_secret() -> None:
    token = mint_offline_pointer(CLAIMS, algorithm="HS256", secret="not-the-shared-secret-but-as-long-as-it")
    assert refused(token).code == "jwt-bad-signature"


def test_es256_signature_of_the_wrong_length() -> None:
    head, body, signature = es256(CLAIMS).split(".")
    short = b64(base64.urlsafe_b64decode(signature + "==")[:63])
    assert refused(f"{head}.{body}.{short}").code == "jwt-bad-signature"


def test_es256_with_a_der_signature_instead_of_r_and_s() -> None:
    header = segment({"alg": "ES256", "kid": "wallet-es"})
    body = segment(CLAIMS)
    der = ES_KEY.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    assert encode_dss_signature(r, s) == der
    assert refused(f"{header}.{body}.{b64(der)}").code == "jwt-bad-signature"


@pytest.mark.parametrize("mint", [hs256, es256, eddsa], ids=["HS256", "ES256", "EdDSA"])
def test_tampered_payload(mint: Callable[[dict[str, object]], str]) -> None:
    head, _, signature = mint(CLAIMS).split(".")
    raised = segment({**CLAIMS, "amount": 1_000_000})
    assert refused(f"{head}.{raised}.{signature}").code == "jwt-bad-signature"


def test_tampered_header_kid() -> None:
    token = es256(CLAIMS)
    _, body, signature = token.split(".")
    other_header = segment({"alg": "ES256", "kid": "wallet-es", "typ": "JWT", "x": 1})
    assert refused(f"{other_header}.{body}.{signature}").code == "jwt-bad-signature"


# --- time ------------------------------------------------------------------------------------------


def test_expired() -> None:
    token = hs256(CLAIMS, exp=int((NOW - timedelta(seconds=1)).timestamp()))
    assert refused(token).code == "jwt-expired"


def test_expired_at_exactly_exp() -> None:
    assert refused(hs256(CLAIMS, exp=int(NOW.timestamp()))).code == "jwt-expired"


def test_expired_asymmetric() -> None:
    token = es256(CLAIMS, exp=int((NOW - timedelta(days=1)).timestamp()))
    assert refused(token).code == "jwt-expired"


def test_not_yet_valid() -> None:
    token = hs256(CLAIMS, nbf=int((NOW + timedelta(minutes=5)).timestamp()))
    assert refused(token).code == "jwt-not-yet-valid"


def test_time_comes_from_now_not_the_system_clock() -> None:
    later = NOW + timedelta(days=400)
    token = hs256(CLAIMS, exp=int((NOW + timedelta(days=1)).timestamp()))
    assert verify(token).expires_at is not None
    assert refused(token, now=later).code == "jwt-expired"


# --- claims ----------------------------------------------------------------------------------------

BAD_CLAIMS: list[tuple[str, dict[str, object], str, str]] = [
    ("amount-zero", {"amount": 0}, "amount-out-of-range", "amount"),
    ("amount-over-u64", {"amount": str(2**64)}, "amount-out-of-range", "amount"),
    ("amount-fraction", {"amount": "1.5"}, "invalid-amount", "amount"),
    ("amount-float", {"amount": 1.5}, "invalid-amount", "amount"),
    ("interval-zero", {"interval": "P0D"}, "invalid-interval", "interval"),
    ("interval-negative", {"interval": "PT-1S"}, "invalid-interval", "interval"),
    ("interval-garbage", {"interval": "monthly"}, "invalid-interval", "interval"),
    ("cycles-zero", {"cycles": 0}, "invalid-cycles", "cycles"),
    ("asset-code-long", {"assetCode": "DOLLARS-AND-CENTS"}, "invalid-asset-code", "assetCode"),
    ("asset-scale-256", {"assetScale": 256}, "invalid-asset-scale", "assetScale"),
    ("cap-yes", {"cap": "yes"}, "invalid-cap", "cap"),
    ("amount-missing", {"amount": None}, "missing-field", "amount"),
    ("typo-field", {"cylces": 3}, "unknown-field", "cylces"),
    (
        "start-after-expiry",
        {"start": "2024-03-01T00:00:00Z", "expiry": "2024-02-01T00:00:00Z"},
        "start-after-expiry",
        "expiry",
    ),
    (
        "expiry-past",
        {"start": "2023-01-01T00:00:00Z", "expiry": "2024-01-01T00:00:00Z"},
        "expiry-in-past",
        "expiry",
    ),
    ("start-not-a-time", {"start": "yesterday"}, "invalid-timestamp", "start"),
    ("webhook-ftp", {"webhook": "ftp://shop.example/"}, "invalid-webhook", "webhook"),
    ("webhook-number", {"webhook": 42}, "invalid-webhook", "webhook"),
    ("description-long", {"description": "d" * 1001}, "invalid-description", "description"),
    ("metadata-list", {"metadata": ["a"]}, "invalid-metadata", "metadata"),
    ("jti-number", {"jti": 17}, "invalid-jti", "jti"),
    ("jti-empty", {"jti": ""}, "invalid-jti", "jti"),
    ("jti-long", {"jti": "j" * 201}, "invalid-jti", "jti"),
    ("exp-text", {"exp": "tomorrow"}, "invalid-numeric-date", "exp"),
    ("exp-nan", {"exp": float("nan")}, "invalid-numeric-date", "exp"),
    ("exp-bool", {"exp": True}, "invalid-numeric-date", "exp"),
    ("nbf-huge", {"nbf": 10**30}, "invalid-numeric-date", "nbf"),
    ("iat-infinite", {"iat": float("inf")}, "invalid-numeric-date", "iat"),
]


@pytest.mark.parametrize(
    ("changes", "inner_code", "field"),
    [case[1:] for case in BAD_CLAIMS],
    ids=[case[0] for case in BAD_CLAIMS],
)
def test_bad_claims_are_refused_with_the_inner_code(
    changes: dict[str, object], inner_code: str, field: str
) -> None:
    claims = {name: value for name, value in {**CLAIMS, **changes}.items() if value is not None}
    error = refused(hs256(claims))
    assert error.code == "jwt-claims-invalid"
    assert error.field == field
    assert error.inner is not None
    assert error.inner.code == inner_code
    assert inner_code in error.detail
    assert field in error.detail


def test_bad_claims_under_a_valid_es256_signature() -> None:
    error = refused(es256({**CLAIMS, "interval": "P0D"}))
    assert error.code == "jwt-claims-invalid"
    assert error.inner is not None
    assert error.inner.code == "invalid-interval"


# --- minting ---------------------------------------------------------------------------------------


def test_mint_writes_datetimes_as_numeric_dates_and_text() -> None:
    token = mint_offline_pointer(
        {**CLAIMS, "iat": NOW, "start": NOW}, algorithm="EdDSA", private_key=ED_KEY, kid="wallet-ed"
    )
    claims = jwt.decode(token, ED_KEY.public_key(), algorithms=["EdDSA"], options={"verify_iat": False})
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["start"] == "2024-01-31T12:00:00.000Z"
    assert jwt.get_unverified_header(token)["kid"] == "wallet-ed"


def test_mint_accepts_a_pem_private_key() -> None:
    pem = ES_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    token = mint_offline_pointer(CLAIMS, algorithm="ES256", private_key=pem, kid="wallet-es")
    assert verify(token).account_id == 7


@pytest.mark.parametrize(
    ("algorithm", "secret", "private_key"),
    [
        ("HS256", None, None),
        ("HS256", SECRET, ED_KEY),
        ("ES256", SECRET, None),
        ("ES256", None, ED_KEY),
        ("EdDSA", None, ES_KEY),
        ("RS256", None, ES_KEY),
    ],
    ids=["hs256-no-secret", "hs256-with-key", "es256-with-secret", "es256-ed-key", "eddsa-ec-key", "rs256"],
)
def test_mint_refuses_mismatched_keys(
    algorithm: str, secret: str | None, private_key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey | None
) -> None:
    with pytest.raises(ValueError, match=r"."):
        mint_offline_pointer(CLAIMS, algorithm=algorithm, secret=secret, private_key=private_key)
