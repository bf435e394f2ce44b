from __future__ import annotations

from datetime import timedelta

import pytest

from spsp_pull.domain.agreement import Changes, Terms
from spsp_pull.domain.duration import Interval
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.terms_input import parse_changes, parse_terms
from tests.domain.helpers import at

NOW = at(2024, 1, 31, 12)
VALID: dict[str, object] = {
    "amount": 1000,
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1M",
    "cycles": 12,
    "cap": False,
}


def test_numbers_default_start_and_no_expiry() -> None:
    assert parse_terms(VALID, NOW) == Terms(
        amount=1000,
        asset_code="USD",
        asset_scale=2,
        interval=Interval(1, 0, 0),
        cycles=12,
        cap=False,
        start=NOW,
        expiry=None,
    )


def test_strings_as_the_js_server_accepts_them() -> None:
    payload = {
        "amount": "1000",
        "assetCode": "XRP",
        "assetScale": "9",
        "interval": "P0Y1M0DT0H0M0S",
        "cycles": "24",
        "cap": "true",
        "start": "2024-02-01T00:00:00.000Z",
        "expiry": "2026-02-01T02:00:00+02:00",
    }
    terms = parse_terms(payload, NOW)
    assert (terms.amount, terms.asset_scale, terms.cycles, terms.cap) == (1000, 9, 24, True)
    assert (terms.start, terms.expiry) == (at(2024, 2, 1), at(2026, 2, 1))


def test_start_in_the_past_is_allowed() -> None:
    assert parse_terms({**VALID, "start": "2020-01-01T00:00:00Z"}, NOW).start == at(2020)


def test_null_optionals_mean_absent() -> None:
    terms = parse_terms({**VALID, "start": None, "expiry": None}, NOW)
    assert (terms.start, terms.expiry) == (NOW, None)


def test_caller_fields_and_jwt_claims_are_ignored() -> None:
    extra = {"webhook": "https://x.example/hook", "description": "tea", "metadata": {"a": 1}}
    claims = dict.fromkeys(("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "kid"), 1)
    assert parse_terms({**VALID, **extra, **claims}, NOW) == parse_terms(VALID, NOW)


@pytest.mark.parametrize("code", ["A", "USD", "XRP", "BTC-LN", "!~abcdefghij"])
def test_asset_codes_accepted(code: str) -> None:
    assert parse_terms({**VALID, "assetCode": code}, NOW).asset_code == code


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("amount", "abc", "invalid-amount"),
        ("amount", "1.5", "invalid-amount"),
        ("amount", 0, "amount-out-of-range"),
        ("amount", "18446744073709551616", "amount-out-of-range"),
        ("assetCode", "", "invalid-asset-code"),
        ("assetCode", "US D", "invalid-asset-code"),
        ("assetCode", "ABCDEFGHIJKLM", "invalid-asset-code"),
        ("assetCode", "EUR\n", "invalid-asset-code"),
        ("assetCode", "€", "invalid-asset-code"),
        ("assetCode", 840, "invalid-asset-code"),
        ("assetScale", 256, "invalid-asset-scale"),
        ("assetScale", -1, "invalid-asset-scale"),
        ("assetScale", "two", "invalid-asset-scale"),
        ("interval", "P0D", "invalid-interval"),
        ("interval", "PT-1S", "invalid-interval"),
        ("interval", 30, "invalid-interval"),
        ("cycles", 0, "invalid-cycles"),
        ("cycles", 10**9 + 1, "invalid-cycles"),
        ("cycles", "1.5", "invalid-cycles"),
        ("cap", "yes", "invalid-cap"),
        ("cap", 1, "invalid-cap"),
        ("cap", "True", "invalid-cap"),
        ("start", "2024-01-31", "invalid-timestamp"),
        ("start", "2024-01-31T00:00:00", "invalid-timestamp"),
        ("start", "yesterday", "invalid-timestamp"),
        ("expiry", 1706659200, "invalid-timestamp"),
        ("expiry", "2020-01-01T00:00:00Z", "expiry-in-past"),  # start defaults to now
        ("expiry", "2024-01-31T12:00:00Z", "expiry-in-past"),
        ("bogus", 1, "unknown-field"),
        ("issuer", 1, "unknown-field"),
    ],
)
def test_terms_refused(field: str, value: object, code: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_terms({**VALID, field: value}, NOW)
    assert (caught.value.code, caught.value.field, caught.value.status) == (code, field, 422)


@pytest.mark.parametrize("field", ["amount", "assetCode", "assetScale", "interval", "cycles", "cap"])
def test_required_fields(field: str) -> None:
    for payload in ({k: v for k, v in VALID.items() if k != field}, {**VALID, field: None}):
        with pytest.raises(InputError) as caught:
            parse_terms(payload, NOW)
        assert (caught.value.code, caught.value.field) == ("missing-field", field)


@pytest.mark.parametrize(
    ("start", "expiry"),
    [
        ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        ("2025-01-01T00:00:00Z", "2024-06-01T00:00:00Z"),
        ("2024-01-01T00:00:00Z", "2023-06-01T00:00:00Z"),
    ],
)
def test_start_must_come_before_expiry(start: str, expiry: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_terms({**VALID, "start": start, "expiry": expiry}, NOW)
    assert (caught.value.code, caught.value.field) == ("start-after-expiry", "expiry")


def test_changes() -> None:
    payload = {
        "amount": "1500",
        "interval": "P1W",
        "cycles": "3",
        "cap": "false",
        "expiry": "2030-01-01T00:00Z",
    }
    assert parse_changes(payload) == Changes(
        amount=1500, interval=Interval(0, 7, 0), cycles=3, cap=False, expiry=at(2030)
    )


def test_changes_leave_webhook_description_and_metadata_to_the_caller() -> None:
    assert parse_changes({"webhook": None, "description": "rent", "metadata": {}}) is None
    assert parse_changes({"cycles": 24, "webhook": "https://x.example"}) == Changes(cycles=24)


def test_changes_null_expiry_clears_it() -> None:
    assert parse_changes({"expiry": None}) == Changes(clear_expiry=True)
    assert parse_changes({"cycles": 24}) == Changes(cycles=24)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("assetCode", "EUR", "asset-immutable"),
        ("assetScale", 2, "asset-immutable"),
        ("start", "2024-01-01T00:00:00Z", "unknown-field"),
        ("jti", "abc", "unknown-field"),
        ("amount", None, "invalid-amount"),
        ("amount", -5, "amount-out-of-range"),
        ("interval", "P", "invalid-interval"),
        ("cycles", 0, "invalid-cycles"),
        ("cap", None, "invalid-cap"),
        ("expiry", "soon", "invalid-timestamp"),
    ],
)
def test_changes_refused(field: str, value: object, code: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_changes({"cycles": 2, field: value})
    assert (caught.value.code, caught.value.field, caught.value.status) == (code, field, 422)


def test_empty_changes() -> None:
    with pytest.raises(InputError) as caught:
        parse_changes({})
    assert caught.value.code == "no-changes"


def test_offsets_are_normalised_to_utc() -> None:
    terms = parse_terms({**VALID, "start": "2024-02-01T05:30:00+05:30"}, NOW)
    assert terms.start == at(2024, 2, 1)
    assert terms.start.utcoffset() == timedelta(0)
