"""Offline pointers in the store, on a SQLite file and on PostgreSQL: keys, registration, revocation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from spsp_pull.domain.agreement import balance
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.states import ReservationKind
from spsp_pull.offline import (
    OfflinePointer,
    OfflinePointerError,
    mint_offline_pointer,
    public_key_pem,
    verify_offline_pointer,
)
from spsp_pull.offline_pointers import open_offline_pointer
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.accounts import AccountRecord, create_account, ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.jwt_keys import (
    add_key,
    delete_key,
    is_revoked,
    list_keys,
    load_key,
    register_offline_pointer,
    revoke_jwt,
)
from tests.test_offline import forge_hs256

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
LEASE = timedelta(seconds=60)


async def admin(db: Database, now: datetime) -> AccountRecord:
    return await ensure_admin(db, "test-admin-key", now)


async def wallet(db: Database, now: datetime, name: str = "alice") -> AccountRecord:
    return (await create_account(db, name, now)).account


def hs256_pointer(now: datetime, **claims: object) -> OfflinePointer:
    token = mint_offline_pointer({**CLAIMS, **claims}, algorithm="HS256", secret=SECRET)
    return verify_offline_pointer(token, hs256_secret=SECRET, resolve_key=lambda _kid: None, now=now)


async def pointer_count(db: Database, jwt_id: str) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(models.Pointer).where(models.Pointer.jwt_id == jwt_id)
            )
            or 0
        )


# --- keys ------------------------------------------------------------------------------------------


async def test_add_list_load_and_delete_keys(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    alice = await wallet(db, now)
    es = await add_key(db, alice.id, "alice-es", "ES256", ES_PEM, now)
    ed = await add_key(db, alice.id, "alice-ed", "EdDSA", ED_PEM, now)
    assert (es.kid, es.algorithm, es.account_id, es.created_at) == ("alice-es", "ES256", alice.id, now)
    assert [key.kid for key in await list_keys(db, alice.id)] == ["alice-es", "alice-ed"]
    loaded = await load_key(db, "alice-ed")
    assert loaded is not None
    assert (loaded.kid, loaded.algorithm, loaded.account_id, loaded.public_key) == (
        "alice-ed",
        "EdDSA",
        alice.id,
        ed.public_key_pem,
    )
    assert await load_key(db, "nobody") is None
    await delete_key(db, alice.id, "alice-es")
    assert await load_key(db, "alice-es") is None
    assert [key.kid for key in await list_keys(db, alice.id)] == ["alice-ed"]


async def test_key_pem_is_stored_in_canonical_form(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    alice = await wallet(db, now)
    pem = ES_PEM.replace("\n", "\r\n")
    record = await add_key(db, alice.id, "alice-es", "ES256", pem, now)
    assert record.public_key_pem == ES_PEM


async def test_duplicate_kid_is_refused_even_for_another_account(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    alice = await wallet(db, now)
    bob = await wallet(db, now, "bob")
    await add_key(db, alice.id, "shared-kid", "ES256", ES_PEM, now)
    with pytest.raises(InputError) as caught:
        await add_key(db, bob.id, "shared-kid", "EdDSA", ED_PEM, now)
    assert (caught.value.code, caught.value.status) == ("kid-exists", 409)
    assert [key.kid for key in await list_keys(db, bob.id)] == []


@pytest.mark.parametrize(
    ("algorithm", "pem", "code"),
    [
        ("ES256", ED_PEM, "public-key-algorithm-mismatch"),
        ("EdDSA", ES_PEM, "public-key-algorithm-mismatch"),
        (
            "ES256",
            public_key_pem(ec.generate_private_key(ec.SECP384R1()).public_key()),
            "public-key-algorithm-mismatch",
        ),
        ("ES256", "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n", "invalid-public-key"),
        (
            "ES256",
            ES_KEY.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "invalid-public-key",
        ),
        ("HS256", ES_PEM, "invalid-jwt-algorithm"),
        ("RS256", ES_PEM, "invalid-jwt-algorithm"),
    ],
    ids=["ed-as-es256", "ec-as-eddsa", "p384-as-es256", "garbage", "private-key", "hs256", "rs256"],
)
async def test_add_key_refuses_keys_that_do_not_fit(
    db: Database, clock: ManualClock, algorithm: str, pem: str, code: str
) -> None:
    now = clock.now()
    alice = await wallet(db, now)
    with pytest.raises(InputError) as caught:
        await add_key(db, alice.id, "alice-key", algorithm, pem, now)
    assert caught.value.code == code
    assert await list_keys(db, alice.id) == []


async def test_add_key_refuses_a_bad_kid(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    alice = await wallet(db, now)
    for kid in ["", "has space", "k" * 201]:
        with pytest.raises(InputError) as caught:
            await add_key(db, alice.id, kid, "ES256", ES_PEM, now)
        assert caught.value.code == "invalid-kid"


async def test_another_accounts_key_cannot_be_deleted(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    alice = await wallet(db, now)
    bob = await wallet(db, now, "bob")
    await add_key(db, alice.id, "alice-es", "ES256", ES_PEM, now)
    with pytest.raises(InputError) as caught:
        await delete_key(db, bob.id, "alice-es")
    assert (caught.value.code, caught.value.status) == ("jwt-key-not-found", 404)
    assert await load_key(db, "alice-es") is not None


# --- registration ----------------------------------------------------------------------------------


async def test_register_once_makes_an_admin_jwt_pointer(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    offline = hs256_pointer(now, jti="order-17", webhook="https://shop.example/hook", description="beer")
    record = await register_offline_pointer(db, offline, owner.id, now)
    assert (record.origin, record.jwt_id, record.account_id) == ("jwt", "order-17", owner.id)
    assert (record.webhook, record.description) == ("https://shop.example/hook", "beer")
    assert record.terms == offline.terms
    assert record.usage.pulled_total == 0
    assert await pointers.find_by_jwt_id(db, owner.id, "hs256", "order-17") == record
    assert await pointer_count(db, "order-17") == 1


async def test_register_again_returns_the_same_pointer_and_balances(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    offline = hs256_pointer(now)
    first = await register_offline_pointer(db, offline, owner.id, now)
    grant = await reservations.reserve(db, first.id, 600, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    await reservations.settle(db, grant.reservation_id, 600, now=now)

    clock.advance(timedelta(days=3))
    again = await register_offline_pointer(db, hs256_pointer(clock.now()), owner.id, clock.now())
    assert again.id == first.id
    assert again.token == first.token
    assert again.usage.pulled_total == 600
    assert balance(again.version, again.usage, clock.now(), None).available == 400
    assert await pointer_count(db, offline.jwt_id) == 1


async def test_concurrent_first_uses_make_one_pointer(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    offline = hs256_pointer(now, jti="rush")
    records = await asyncio.gather(*(register_offline_pointer(db, offline, owner.id, now) for _ in range(10)))
    assert {record.id for record in records} == {records[0].id}
    assert await pointer_count(db, "rush") == 1


async def test_asymmetric_pointer_belongs_to_the_keys_account(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    alice = await wallet(db, now)
    await add_key(db, alice.id, "alice-ed", "EdDSA", ED_PEM, now)
    token = mint_offline_pointer(CLAIMS, algorithm="EdDSA", private_key=ED_KEY, kid="alice-ed")
    record = await open_offline_pointer(db, token, hs256_secret=None, admin_account_id=owner.id, now=now)
    assert record.account_id == alice.id
    assert record.origin == "jwt"


async def test_same_jti_from_another_account_is_another_pointer(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    alice = await wallet(db, now)
    bob = await wallet(db, now, "bob")
    await add_key(db, alice.id, "alice-es", "ES256", ES_PEM, now)
    await add_key(db, bob.id, "bob-ed", "EdDSA", ED_PEM, now)
    alices = mint_offline_pointer(
        {**CLAIMS, "jti": "1"}, algorithm="ES256", private_key=ES_KEY, kid="alice-es"
    )
    bobs = mint_offline_pointer({**CLAIMS, "jti": "1"}, algorithm="EdDSA", private_key=ED_KEY, kid="bob-ed")
    first = await open_offline_pointer(db, alices, hs256_secret=None, admin_account_id=owner.id, now=now)
    second = await open_offline_pointer(db, bobs, hs256_secret=None, admin_account_id=owner.id, now=now)
    assert (first.account_id, second.account_id) == (alice.id, bob.id)
    assert first.id != second.id
    assert await pointer_count(db, "1") == 2


# --- opening a pointer by its token ----------------------------------------------------------------


async def test_open_registers_on_first_use_and_outlives_exp(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    exp = now + timedelta(hours=1)
    token = mint_offline_pointer({**CLAIMS, "exp": exp}, algorithm="HS256", secret=SECRET)
    first = await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    clock.advance(timedelta(days=2))
    later = await open_offline_pointer(
        db, token, hs256_secret=SECRET, admin_account_id=owner.id, now=clock.now()
    )
    assert later.id == first.id


async def test_open_refuses_an_expired_token_never_used(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    token = mint_offline_pointer(
        {**CLAIMS, "exp": now - timedelta(seconds=1)}, algorithm="HS256", secret=SECRET
    )
    with pytest.raises(OfflinePointerError) as caught:
        await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    assert caught.value.code == "jwt-expired"
    assert await pointer_count(db, "anything") == 0


async def test_open_checks_the_signature_even_for_a_registered_jti(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    token = mint_offline_pointer({**CLAIMS, "jti": "paid"}, algorithm="HS256", secret=SECRET)
    await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    forged = mint_offline_pointer(
        {**CLAIMS, "jti": "paid"}, algorithm="HS256", secret="guessed-but-as-long-as-the-real-one"
    )
    with pytest.raises(OfflinePointerError) as caught:
        await open_offline_pointer(db, forged, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    assert caught.value.code == "jwt-bad-signature"


async def test_open_uses_the_stored_key_and_refuses_confusion(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    alice = await wallet(db, now)
    await add_key(db, alice.id, "alice-es", "ES256", ES_PEM, now)
    forged = forge_hs256({"alg": "HS256", "kid": "alice-es"}, CLAIMS, ES_PEM.encode())
    with pytest.raises(OfflinePointerError) as caught:
        await open_offline_pointer(db, forged, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    assert caught.value.code == "jwt-alg-confusion"
    unknown = mint_offline_pointer(CLAIMS, algorithm="ES256", private_key=ES_KEY, kid="alice-old")
    with pytest.raises(OfflinePointerError) as caught:
        await open_offline_pointer(db, unknown, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    assert caught.value.code == "jwt-unknown-kid"


# --- revocation ------------------------------------------------------------------------------------


async def test_revocation_before_first_use_refuses_registration(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    await revoke_jwt(db, owner.id, "lost-phone", now)
    assert await is_revoked(db, owner.id, "lost-phone")
    with pytest.raises(OfflinePointerError) as caught:
        await register_offline_pointer(db, hs256_pointer(now, jti="lost-phone"), owner.id, now)
    assert (caught.value.code, caught.value.status) == ("jwt-revoked", 401)
    assert await pointer_count(db, "lost-phone") == 0


async def test_revoking_twice_is_a_no_op(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    await revoke_jwt(db, owner.id, "twice", now)
    await revoke_jwt(db, owner.id, "twice", now)
    assert await is_revoked(db, owner.id, "twice")


async def test_revoking_after_first_use_is_refused(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    record = await register_offline_pointer(db, hs256_pointer(now, jti="used"), owner.id, now)
    with pytest.raises(InputError) as caught:
        await revoke_jwt(db, owner.id, "used", now)
    assert (caught.value.code, caught.value.status) == ("jwt-already-registered", 409)
    assert not await is_revoked(db, owner.id, "used")
    again = await pointers.find_by_id(db, record.id)
    assert again is not None
    assert again.cancelled_at is None


async def test_another_accounts_revocation_does_not_touch_this_accounts_tokens(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    owner = await admin(db, now)
    mallory = await wallet(db, now, "mallory")
    await revoke_jwt(db, mallory.id, "order-1", now)
    assert not await is_revoked(db, owner.id, "order-1")
    record = await register_offline_pointer(db, hs256_pointer(now, jti="order-1"), owner.id, now)
    assert record.account_id == owner.id
    with pytest.raises(InputError) as caught:
        await revoke_jwt(db, owner.id, "order-1", now)
    assert caught.value.code == "jwt-already-registered"


async def test_revocation_racing_first_use_never_leaves_a_live_pointer(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    owner = await admin(db, now)
    for round_number in range(10):
        jti = f"race-{round_number}"
        offline = hs256_pointer(now, jti=jti)
        revoke = revoke_jwt(db, owner.id, jti, now)
        register = register_offline_pointer(db, offline, owner.id, now)
        if round_number % 2:
            registered, revoked = await asyncio.gather(register, revoke, return_exceptions=True)
        else:
            revoked, registered = await asyncio.gather(revoke, register, return_exceptions=True)
        record = await pointers.find_by_jwt_id(db, owner.id, "hs256", jti)
        if await is_revoked(db, owner.id, jti):
            # The revocation stands: the pointer was never made, or was cancelled at once.
            assert revoked is None
            assert record is None or record.cancelled_at is not None
            if isinstance(registered, BaseException):
                assert isinstance(registered, OfflinePointerError)
                assert registered.code == "jwt-revoked"
        else:
            assert isinstance(revoked, InputError)
            assert revoked.code == "jwt-already-registered"
            assert record is not None
            assert record.cancelled_at is None


# --- a jti belongs to its signer -------------------------------------------------------------------


async def alice_and_mallory(db: Database, now: datetime) -> tuple[AccountRecord, AccountRecord]:
    alice = await wallet(db, now)
    mallory = await wallet(db, now, "mallory")
    await add_key(db, alice.id, "alice-es", "ES256", ES_PEM, now)
    await add_key(db, mallory.id, "mallory-ed", "EdDSA", ED_PEM, now)
    return alice, mallory


def alices_token(**claims: object) -> str:
    return mint_offline_pointer({**CLAIMS, **claims}, algorithm="ES256", private_key=ES_KEY, kid="alice-es")


def mallorys_token(**claims: object) -> str:
    return mint_offline_pointer({**CLAIMS, **claims}, algorithm="EdDSA", private_key=ED_KEY, kid="mallory-ed")


async def test_another_account_revoking_a_jti_first_leaves_the_signer_free_to_revoke_it(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    owner = await admin(db, now)
    alice, mallory = await alice_and_mallory(db, now)
    await revoke_jwt(db, mallory.id, "leaked-1", now)
    await revoke_jwt(db, alice.id, "leaked-1", now)
    assert await is_revoked(db, alice.id, "leaked-1")
    with pytest.raises(OfflinePointerError) as caught:
        await open_offline_pointer(
            db, alices_token(jti="leaked-1"), hs256_secret=None, admin_account_id=owner.id, now=now
        )
    assert caught.value.code == "jwt-revoked"
    assert await pointer_count(db, "leaked-1") == 0


async def test_another_account_registering_a_jti_first_does_not_take_the_signers_pointer(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    owner = await admin(db, now)
    alice, mallory = await alice_and_mallory(db, now)
    squatted = mallorys_token(jti="order-1", amount=1)
    genuine = alices_token(jti="order-1")
    opened = {
        name: await open_offline_pointer(db, token, hs256_secret=None, admin_account_id=owner.id, now=now)
        for name, token in (("mallory", squatted), ("alice", genuine))
    }
    assert (opened["alice"].account_id, opened["alice"].terms.amount) == (alice.id, 1000)
    assert (opened["mallory"].account_id, opened["mallory"].terms.amount) == (mallory.id, 1)
    again = await open_offline_pointer(db, genuine, hs256_secret=None, admin_account_id=owner.id, now=now)
    assert again.id == opened["alice"].id
    assert await pointer_count(db, "order-1") == 2


async def test_one_jti_under_two_keys_of_one_account_is_two_pointers(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    owner = await admin(db, now)
    await add_key(db, owner.id, "admin-es", "ES256", ES_PEM, now)
    by_secret = await register_offline_pointer(db, hs256_pointer(now, jti="twin", amount=5), owner.id, now)
    by_key = await open_offline_pointer(
        db,
        mint_offline_pointer(
            {**CLAIMS, "jti": "twin"}, algorithm="ES256", private_key=ES_KEY, kid="admin-es"
        ),
        hs256_secret=SECRET,
        admin_account_id=owner.id,
        now=now,
    )
    assert by_secret.id != by_key.id
    assert (by_secret.terms.amount, by_key.terms.amount) == (5, 1000)


async def test_a_revocation_covers_every_signer_of_the_account(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    owner = await admin(db, now)
    await add_key(db, owner.id, "admin-ed", "EdDSA", ED_PEM, now)
    await revoke_jwt(db, owner.id, "stolen", now)
    tokens = [
        mint_offline_pointer({**CLAIMS, "jti": "stolen"}, algorithm="HS256", secret=SECRET),
        mint_offline_pointer(
            {**CLAIMS, "jti": "stolen"}, algorithm="EdDSA", private_key=ED_KEY, kid="admin-ed"
        ),
    ]
    for token in tokens:
        with pytest.raises(OfflinePointerError) as caught:
            await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
        assert caught.value.code == "jwt-revoked"


async def test_a_pointer_registered_before_signers_were_recorded_keeps_its_token(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    owner = await admin(db, now)
    legacy = await pointers.create_pointer(
        db,
        pointers.NewPointer(
            account_id=owner.id, terms=hs256_pointer(now).terms, origin="jwt", jwt_id="from-before"
        ),
        now,
    )
    token = mint_offline_pointer({**CLAIMS, "jti": "from-before"}, algorithm="HS256", secret=SECRET)
    opened = await open_offline_pointer(db, token, hs256_secret=SECRET, admin_account_id=owner.id, now=now)
    assert opened.id == legacy.id
    assert await pointer_count(db, "from-before") == 1
    with pytest.raises(InputError) as caught:
        await revoke_jwt(db, owner.id, "from-before", now)
    assert caught.value.code == "jwt-already-registered"
