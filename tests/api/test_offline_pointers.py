"""Offline (JWT) pointers over HTTP: registered on first use, never reset, attacks refused with 401."""

from __future__ import annotations

from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from spsp_pull.domain.states import ReservationKind
from spsp_pull.offline import mint_offline_pointer
from spsp_pull.store import reservations
from spsp_pull.store.pointers import find_by_token
from tests.api.conftest import AGREEMENT, Api

SECRET = "offline-secret-shared-with-the-wallet"  # the fixture's SPSP_JWT_SECRET


def hs256(**claims: object) -> str:
    return mint_offline_pointer({**AGREEMENT, **claims}, algorithm="HS256", secret=SECRET)


async def test_first_query_registers_and_later_ones_never_reset(api: Api) -> None:
    token = hs256(jti="order-1")
    first = await api.query(token)
    assert first.status == 200, await first.text()
    assert (await first.json(content_type=None))["pull"]["balance"]["available"] == "1000"
    listed = (await (await api.client.get("/pointers", headers=api.auth(api.admin_key))).json())["items"]
    assert [item["origin"] for item in listed] == ["jwt"]
    record = await find_by_token(api.context.db, listed[0]["token"])
    assert record is not None
    now = api.clock.now()
    grant = await reservations.reserve(
        api.context.db, record.id, 300, kind=ReservationKind.STREAM, now=now, lease=timedelta(30)
    )
    assert grant is not None
    await reservations.settle(api.context.db, grant.reservation_id, 300, now=now)
    again = await (await api.query(token)).json(content_type=None)
    assert again["pull"]["balance"] == {"total": "300", "interval": "300", "available": "700"}
    registered = await api.client.post(f"/{token}")
    assert registered.status == 201 and (await registered.json())["balanceTotal"] == "300"
    assert (
        len((await (await api.client.get("/pointers", headers=api.auth(api.admin_key))).json())["items"]) == 1
    )


async def test_registered_pointer_keeps_answering_after_the_token_expires(api: Api) -> None:
    token = hs256(jti="short", exp=int((api.clock.now() + timedelta(hours=1)).timestamp()))
    assert (await api.query(token)).status == 200
    api.clock.advance(timedelta(days=2))
    later = await api.query(token)
    assert later.status == 200


async def test_attacks_are_refused_with_specific_codes(api: Api) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    response = await api.client.post(
        "/jwt-keys", json={"kid": "wallet-1", "alg": "ES256", "publicKey": public_pem}, headers=api.auth()
    )
    assert response.status == 201
    unsigned = jwt.encode(dict(AGREEMENT), key="", algorithm="none")
    header, payload, _ = hs256().split(".")
    cases = {
        "jwt-alg-none": unsigned,
        "jwt-bad-signature": mint_offline_pointer(dict(AGREEMENT), algorithm="HS256", secret="wrong-" * 8),
        "jwt-alg-confusion": _confused(public_pem),
        "jwt-unknown-kid": mint_offline_pointer(
            dict(AGREEMENT), algorithm="ES256", private_key=key, kid="nope"
        ),
        "jwt-expired": hs256(exp=int((api.clock.now() - timedelta(minutes=5)).timestamp())),
        "jwt-claims-invalid": hs256(amount="0"),
        "jwt-malformed": f"{header}.{payload}.!!",
    }
    for code, token in cases.items():
        response = await api.query(token)
        assert response.status == 401, (code, await response.text())
        assert (await response.json(content_type=None))["code"] == code
    assert await api.pointer_count(api.admin_key) == 0
    assert await api.pointer_count() == 0
    good = mint_offline_pointer(dict(AGREEMENT), algorithm="ES256", private_key=key, kid="wallet-1")
    assert (await api.query(good)).status == 200
    assert await api.pointer_count() == 1  # owned by the account whose key signed it


def _confused(public_pem: str) -> str:
    """An HS256 token whose HMAC key is the public key's PEM (the classic algorithm-confusion forgery)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "wallet-1"}).encode())
    signing_input = f"{header}.{b64(json.dumps(AGREEMENT).encode())}"
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def test_revocation_before_first_use(api: Api) -> None:
    token = hs256(jti="to-revoke")
    response = await api.client.post(
        "/jwt-revocations", json={"jti": "to-revoke"}, headers=api.auth(api.admin_key)
    )
    assert response.status == 201
    refused = await api.query(token)
    assert refused.status == 401 and (await refused.json(content_type=None))["code"] == "jwt-revoked"
    assert await api.pointer_count(api.admin_key) == 0


async def _register_key(api: Api, account_key: str, kid: str) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    response = await api.client.post(
        "/jwt-keys", json={"kid": kid, "alg": "ES256", "publicKey": public_pem}, headers=api.auth(account_key)
    )
    assert response.status == 201, await response.text()
    return key


async def test_another_accounts_revocation_of_a_jti_neither_blocks_nor_replaces_the_signers(api: Api) -> None:
    key = await _register_key(api, api.wallet_key, "wallet-1")
    leaked = mint_offline_pointer(
        {**AGREEMENT, "jti": "leaked"}, algorithm="ES256", private_key=key, kid="wallet-1"
    )
    for account_key in (api.other_key, api.wallet_key):
        response = await api.client.post(
            "/jwt-revocations", json={"jti": "leaked"}, headers=api.auth(account_key)
        )
        assert response.status == 201, await response.text()
    refused = await api.query(leaked)
    assert refused.status == 401 and (await refused.json(content_type=None))["code"] == "jwt-revoked"
    assert await api.pointer_count() == 0


async def test_another_accounts_pointer_with_the_same_jti_does_not_block_the_signers(api: Api) -> None:
    wallet_key = await _register_key(api, api.wallet_key, "wallet-1")
    other_key = await _register_key(api, api.other_key, "other-1")
    squatter = mint_offline_pointer(
        {**AGREEMENT, "jti": "order-7", "amount": "1"},
        algorithm="ES256",
        private_key=other_key,
        kid="other-1",
    )
    genuine = mint_offline_pointer(
        {**AGREEMENT, "jti": "order-7"}, algorithm="ES256", private_key=wallet_key, kid="wallet-1"
    )
    assert (await api.query(squatter)).status == 200
    response = await api.query(genuine)
    assert response.status == 200, await response.text()
    assert (await response.json(content_type=None))["pull"]["agreement"]["amount"] == "1000"
    assert (await api.pointer_count(), await api.pointer_count(api.other_key)) == (1, 1)
    refused = await api.client.post("/jwt-revocations", json={"jti": "order-7"}, headers=api.auth())
    assert refused.status == 409
    assert (await refused.json())["code"] == "jwt-already-registered"
