"""The OpenAPI 3.1 description of the HTTP API (a test keeps it equal to the routes) and a /docs page."""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from spsp_pull.bridge.openapi import PAYOUT_PATHS, PAYOUT_SCHEMAS

Json = dict[str, Any]

AMOUNT = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "integer in minor units (u64)"}
AMOUNT_IN = {
    "oneOf": [AMOUNT, {"type": "integer", "minimum": 1, "maximum": 18446744073709551615}],
    "description": "integer or integer string, 1..2^64-1",
}
TIME = {"type": "string", "format": "date-time"}
CAP_IN = {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}
CYCLES_IN = {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 1_000_000_000}, {"type": "string"}]}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json, description: str, media: str = "application/json") -> Json:
    return {"description": description, "content": {media: {"schema": schema}}}


PROBLEM = _json(_ref("Problem"), "error", "application/problem+json")
BEARER: list[Json] = [{"bearer": []}]
TOKEN_PARAM = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}


def _op(
    summary: str,
    responses: Json,
    *,
    auth: bool = True,
    body: Json | None = None,
    params: list[Json] | None = None,
    tags: list[str] | None = None,
) -> Json:
    op: Json = {"summary": summary, "responses": {**responses, "default": PROBLEM}}
    if auth:
        op["security"] = BEARER
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    if tags:
        op["tags"] = tags
    return op


EVENT_DATA = {
    "pull.completed": "after each completed pull: the pull's announcement (PullCompleted)",
    "pointer.created": "a pointer was made: data is the Pointer",
    "pointer.updated": "its terms or details changed: data is the Pointer",
    "pointer.paused": "the payer paused it (or moved the end of the pause): data is the Pointer",
    "pointer.resumed": "the payer resumed it, or the pause ended by itself (then dated resumesAt): data "
    "is the Pointer",
    "pointer.cancelled": "the payer cancelled it: data is the Pointer",
    "allowance.low": "80 % of what the current cycle makes pullable is used, once per cycle: data is "
    "{token, cycle, cycleEnds, used, available, assetCode, assetScale}",
    "payout.created": "an offer was made against the pointer: data is {payout, token}",
    "payout.approved": "approved and queued, its allowance reserved: data is {payout, token}",
    "payout.sent": "paid: data is {payout, token}",
    "payout.failed": "failed with proof that nothing was paid: data is {payout, token}",
    "payout.in_flight": "being sent: data is {payout, token}",
    "payout.confirmed": "confirmed on chain: data is {payout, token}",
    "payout.expired": "the offer expired unapproved: data is {payout, token}",
    "payout.cancelled": "cancelled: data is {payout, token}",
}
"""Every event type, and when it is sent to the pointer's webhook (payout events go to the payout's
notificationUrl too, without `token`)."""

SCHEMAS: Json = {
    "Problem": {
        "type": "object",
        "required": ["status", "code", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "stable machine-readable error code"},
            "detail": {"type": "string"},
            "field": {"type": "string"},
        },
    },
    "AgreementInput": {
        "type": "object",
        "required": ["amount", "assetCode", "assetScale", "interval", "cycles", "cap"],
        "properties": {
            "amount": AMOUNT_IN,
            "assetCode": {
                "type": "string",
                "minLength": 1,
                "maxLength": 12,
                "pattern": "^[!-~]+$",
                "description": "printable ASCII, no spaces",
            },
            "assetScale": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 255}, {"type": "string"}]},
            "interval": {"type": "string", "description": "ISO 8601 duration, e.g. P1M, P1W, PT0.5S"},
            "cycles": CYCLES_IN,
            "cap": CAP_IN,
            "start": TIME,
            "expiry": TIME,
            "webhook": {
                "type": "string",
                "format": "uri",
                "maxLength": 2000,
                "description": "http(s) URL told of each completed pull, signed with the account's webhook "
                "secret; a public address only (webhook-target-refused otherwise)",
            },
            "description": {"type": "string", "maxLength": 1000},
            "metadata": {"type": "object", "description": "at most 8 KiB as JSON"},
        },
    },
    "AgreementChanges": {
        "type": "object",
        "description": "At least one field. amount, interval, cycles, cap, expiry and paused are terms: "
        "changing any makes a new agreement version. webhook, description and metadata are not: changing "
        "only them makes no new version and leaves the balances as they are. null removes expiry, webhook, "
        "description or metadata.",
        "minProperties": 1,
        "properties": {
            "amount": AMOUNT_IN,
            "interval": {"type": "string"},
            "cycles": CYCLES_IN,
            "cap": CAP_IN,
            "expiry": {"oneOf": [TIME, {"type": "null"}]},
            "paused": {
                "type": "boolean",
                "description": "true pauses (again: only sets resumesAt), false resumes (409 not-paused "
                "when no pause holds). While paused nothing is available and pulls and payouts are refused "
                "(code paused / pointer-paused); cycles that start during the pause grant nothing and still "
                "count towards cycles; the cycle in progress keeps its grant.",
            },
            "resumesAt": {
                "oneOf": [TIME, {"type": "null"}],
                "description": 'only with "paused": true: the pause ends by itself then (in the future); '
                "absent or null: until resumed",
            },
            "webhook": {
                "type": ["string", "null"],
                "format": "uri",
                "maxLength": 2000,
                "description": "http(s) URL. Pulls completed after the change are announced there; an "
                "announcement already queued still goes to the URL it was queued for.",
            },
            "description": {"type": ["string", "null"], "maxLength": 1000},
            "metadata": {"type": ["object", "null"], "description": "at most 8 KiB as JSON"},
        },
    },
    "Pointer": {
        "type": "object",
        "properties": {
            "pointer": {"type": "string", "description": "payment pointer $host/token"},
            "url": {"type": "string"},
            "token": {"type": "string"},
            "origin": {"type": "string", "enum": ["online", "jwt"]},
            "state": {
                "type": "string",
                "enum": ["pending", "active", "paused", "ended", "expired", "cancelled"],
            },
            "amount": AMOUNT,
            "assetCode": {"type": "string"},
            "assetScale": {"type": "integer"},
            "interval": {"type": "string"},
            "cycles": {"type": "integer"},
            "cap": {"type": "boolean"},
            "start": TIME,
            "expiry": {"oneOf": [TIME, {"type": "null"}]},
            "balanceTotal": AMOUNT,
            "balanceInterval": AMOUNT,
            "balanceAvailable": AMOUNT,
            "balanceReserved": AMOUNT,
            "cycleCurrent": {"type": "integer"},
            "version": {"type": "integer"},
            "webhook": {"type": ["string", "null"]},
            "description": {"type": ["string", "null"]},
            "metadata": {"type": ["object", "null"]},
            "createdAt": TIME,
            "cancelledAt": {"oneOf": [TIME, {"type": "null"}]},
            "pausedSince": {
                "oneOf": [TIME, {"type": "null"}],
                "description": "while paused: since when; else null",
            },
            "resumesAt": {
                "oneOf": [TIME, {"type": "null"}],
                "description": "while paused: when the pause ends by itself (null: until resumed); else null",
            },
        },
    },
    "PointerDetail": {
        "allOf": [
            _ref("Pointer"),
            {
                "type": "object",
                "properties": {
                    "versions": {"type": "array", "items": {"type": "object"}},
                    "pulls": {"type": "array", "items": _ref("PullEntry")},
                },
            },
        ]
    },
    "PullEntry": {
        "type": "object",
        "description": "One ledger entry: what one reservation debited. A pull that reserved in chunks has "
        "one entry per chunk; its webhook's pullId is the reservationId of its first entry.",
        "properties": {
            "id": {"type": "integer"},
            "reservationId": {"type": ["integer", "null"]},
            "amount": AMOUNT,
            "kind": {"type": "string", "enum": ["stream", "payout", "recovered"]},
            "cycle": {"type": "integer"},
            "createdAt": TIME,
        },
    },
    "Event": {
        "type": "object",
        "description": "The body of every webhook delivery, signed with the account's webhook secret "
        "(Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<Webhook-Id>.<t>.<body>'>); a "
        "payout's deliveries to its notificationUrl with the payout's own notificationSecret.",
        "required": ["id", "type", "createdAt", "data"],
        "properties": {
            "id": {"type": "string", "description": "the Webhook-Id header: the same on every retry"},
            "type": {"type": "string", "enum": list(EVENT_DATA)},
            "createdAt": TIME,
            "data": {"type": "object", "description": "per type: see the webhooks of this document"},
        },
    },
    "PullCompleted": {
        "type": "object",
        "description": "The body of a pull.completed webhook: the Event envelope, whose data is the pull's "
        "announcement, and the same fields at the top level as well (as the existing pull servers send "
        "them; new receivers read data).",
        "required": [
            "id",
            "type",
            "createdAt",
            "data",
            "balanceTotal",
            "balanceInterval",
            "pointer",
            "pullId",
            "pullAmount",
            "event",
        ],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "const": "pull.completed"},
            "createdAt": TIME,
            "data": {"type": "object", "description": "the fields below"},
            "balanceTotal": AMOUNT,
            "balanceInterval": AMOUNT,
            "pointer": {"type": "string"},
            "pullId": {"type": "string", "description": "the pull: its first ledger entry's reservationId"},
            "pullAmount": {**AMOUNT, "description": "what this pull debited, in pointer units"},
            "balanceAvailable": AMOUNT,
            "cycleCurrent": {"type": "integer"},
            "assetCode": {"type": "string"},
            "assetScale": {"type": "integer"},
            "event": {"type": "string", "const": "pull.completed"},
            "timestamp": TIME,
        },
    },
    "CreatedPointer": {
        "allOf": [
            _ref("Pointer"),
            {
                "type": "object",
                "required": ["warnings"],
                "properties": {
                    "warnings": {
                        "type": "array",
                        "description": "what the new pointer cannot do (it is created all the same); empty "
                        "when nothing. `no-rate`: no exchange rate from its asset to the server's, so pulls "
                        "over ILP are refused (payouts may still serve it)",
                        "items": {
                            "type": "object",
                            "required": ["code", "detail"],
                            "properties": {
                                "code": {"type": "string", "enum": ["no-rate"]},
                                "detail": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ]
    },
    "PointerPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("Pointer")},
            "nextCursor": {"type": ["string", "null"]},
        },
    },
    "SpspResponse": {
        "type": "object",
        "required": ["destination_account", "shared_secret"],
        "properties": {
            "destination_account": {"type": "string"},
            "shared_secret": {"type": "string", "contentEncoding": "base64"},
            "pull": {
                "type": "object",
                "properties": {
                    "balance": {
                        "type": "object",
                        "properties": {"total": AMOUNT, "interval": AMOUNT, "available": AMOUNT},
                    },
                    "cycle": {"type": "integer"},
                    "state": {
                        "enum": ["pending", "active", "paused", "ended", "expired", "cancelled"],
                        "description": "ended, expired and cancelled: no more allowance will be granted",
                    },
                    "agreement": {"type": "object"},
                    "resumesAt": {
                        "oneOf": [TIME, {"type": "null"}],
                        "description": "only while paused: when the pause ends by itself "
                        "(null: until resumed)",
                    },
                },
            },
        },
    },
    "Account": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "admin": {"type": "boolean"},
            "createdAt": TIME,
            "apiKey": {"type": "string", "description": "shown once, on creation"},
            "apiKeyId": {"type": "integer", "description": "the id of apiKey, to list or revoke it"},
        },
    },
    "ApiKey": {
        "type": "object",
        "description": "An API key, without the key itself.",
        "required": ["id", "prefix", "label", "bootstrap", "createdAt", "revokedAt"],
        "properties": {
            "id": {"type": "integer"},
            "prefix": {"type": "string", "description": "the key's first 8 characters"},
            "label": {"type": ["string", "null"]},
            "bootstrap": {
                "type": "boolean",
                "description": "the admin key from SPSP_AUTH_TOKEN, which only the configuration replaces",
            },
            "createdAt": TIME,
            "revokedAt": {"oneOf": [TIME, {"type": "null"}]},
        },
    },
    "ApiKeyList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("ApiKey")}}},
    "WebhookSecret": {
        "type": "object",
        "description": "The key of the HMAC-SHA256 Webhook-Signature on the account's webhooks.",
        "required": ["webhookSecret", "previousSecretValidUntil"],
        "properties": {
            "webhookSecret": {"type": "string"},
            "previousSecretValidUntil": {
                "oneOf": [TIME, {"type": "null"}],
                "description": "after a rotation, the previous secret signs too (a second v1=) until then",
            },
        },
    },
}

NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
KEY_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
KEY_LIST = _json(_ref("ApiKeyList"), "the keys, revoked ones included, oldest first")
KEY_REVOKED = _json(
    _ref("ApiKey"),
    "revoked: from now on the key gets 401 unauthorized. Revoking a revoked key answers the same, "
    "revokedAt unchanged",
)
WEBHOOK_SECRET = _json(_ref("WebhookSecret"), "the secret in force")
WEBHOOK_SECRET_ROTATED = _json(
    _ref("WebhookSecret"),
    "a new secret, in force at once; the previous one also signs for 24 hours, so receivers can switch",
)
KEY_NOT_FOUND = {"description": "key-not-found: the account has no key with this id"}
KEY_IS_BOOTSTRAP = {"description": "bootstrap-key: the admin key from SPSP_AUTH_TOKEN cannot be revoked here"}
SPSP_OK = _json(_ref("SpspResponse"), "SPSP response", "application/spsp4+json")
SPSP_404 = _json({"type": "object"}, "no such pointer (InvalidPointerError)", "application/spsp4+json")
CORS = _op("CORS preflight", {"204": {"description": "allowed"}}, auth=False, tags=["spsp"])


@cache
def openapi_document() -> Json:
    pointer_ok = _json(_ref("Pointer"), "the pointer")
    update = _op(
        "Update a pointer: its terms (a new agreement version from the start of the current cycle) and/or "
        "its webhook, description and metadata (no new version)",
        {"200": pointer_ok},
        body=_ref("AgreementChanges"),
        params=[TOKEN_PARAM, IDEMPOTENCY],
        tags=["pointers"],
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "spsp-pull", "version": "0.1.0", "description": "SPSP pull-pointer server"},
        "webhooks": {
            event: {
                "post": {
                    "summary": when,
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": _ref("PullCompleted" if event == "pull.completed" else "Event")
                            }
                        }
                    },
                    "responses": {"2XX": {"description": "accepted; anything else is retried with backoff"}},
                }
            }
            for event, when in EVENT_DATA.items()
        },
        "components": {
            "schemas": {**SCHEMAS, **PAYOUT_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/": {
                "get": _op(
                    "Service index; with an SPSP Accept header, the push endpoint",
                    {"200": SPSP_OK},
                    auth=False,
                    tags=["spsp"],
                ),
                "post": _op(
                    "Create a pull pointer",
                    {"201": _json(_ref("CreatedPointer"), "the pointer, and what it cannot do")},
                    body=_ref("AgreementInput"),
                    params=[IDEMPOTENCY],
                    tags=["pointers"],
                ),
            },
            "/{token}": {
                "get": _op(
                    "SPSP query of a pull pointer (or of an offline JWT pointer, registered on first use)",
                    {"200": SPSP_OK, "404": SPSP_404},
                    auth=False,
                    params=[TOKEN_PARAM],
                    tags=["spsp"],
                ),
                "post": _op(
                    "Register an offline JWT pointer before its first pull",
                    {"201": pointer_ok},
                    auth=False,
                    params=[TOKEN_PARAM],
                    tags=["spsp"],
                ),
                "options": CORS,
            },
            "/.well-known/pay": {
                "get": _op("SPSP push-payment endpoint", {"200": SPSP_OK}, auth=False, tags=["spsp"]),
                "options": CORS,
            },
            "/update/{token}": {"post": update},
            "/pointers": {
                "get": _op(
                    "List this account's pointers",
                    {"200": _json(_ref("PointerPage"), "a page")},
                    params=[
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    tags=["pointers"],
                ),
            },
            "/pointers/{token}": {
                "get": _op(
                    "One pointer with its versions and pulls",
                    {"200": _json(_ref("PointerDetail"), "the pointer")},
                    params=[TOKEN_PARAM],
                    tags=["pointers"],
                ),
                "patch": update,
                "delete": _op(
                    "Cancel a pointer", {"200": pointer_ok}, params=[TOKEN_PARAM], tags=["pointers"]
                ),
            },
            "/accounts": {
                "get": _op(
                    "List accounts (admin)", {"200": _json({"type": "object"}, "accounts")}, tags=["accounts"]
                ),
                "post": _op(
                    "Create an account with its first API key (admin)",
                    {"201": _json(_ref("Account"), "the account")},
                    body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                    params=[IDEMPOTENCY],
                    tags=["accounts"],
                ),
            },
            "/accounts/{name}/keys": {
                "get": _op(
                    "An account's API keys (admin)", {"200": KEY_LIST}, params=[NAME_PARAM], tags=["accounts"]
                ),
                "post": {
                    **_op(
                        "Issue another API key for an account (admin)",
                        {"201": _json(_ref("Account"), "the account and its new key")},
                        params=[NAME_PARAM],
                        tags=["accounts"],
                    ),
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "label": {"type": "string", "minLength": 1, "maxLength": 100}
                                    },
                                }
                            }
                        },
                    },
                },
            },
            "/accounts/{name}/keys/{id}": {
                "delete": _op(
                    "Revoke an account's API key (admin)",
                    {"200": KEY_REVOKED, "404": KEY_NOT_FOUND, "409": KEY_IS_BOOTSTRAP},
                    params=[NAME_PARAM, KEY_ID_PARAM],
                    tags=["accounts"],
                ),
            },
            "/accounts/{name}/webhook-secret": {
                "get": _op(
                    "An account's webhook signing secret (admin)",
                    {"200": WEBHOOK_SECRET},
                    params=[NAME_PARAM],
                    tags=["accounts"],
                )
            },
            "/accounts/{name}/webhook-secret/rotate": {
                "post": _op(
                    "Rotate an account's webhook signing secret (admin)",
                    {"200": WEBHOOK_SECRET_ROTATED},
                    params=[NAME_PARAM, IDEMPOTENCY],
                    tags=["accounts"],
                )
            },
            "/me/webhook-secret": {
                "get": _op(
                    "The calling account's webhook signing secret", {"200": WEBHOOK_SECRET}, tags=["accounts"]
                )
            },
            "/me/webhook-secret/rotate": {
                "post": _op(
                    "Rotate the calling account's webhook signing secret",
                    {"200": WEBHOOK_SECRET_ROTATED},
                    params=[IDEMPOTENCY],
                    tags=["accounts"],
                )
            },
            "/me": {
                "get": _op(
                    "The calling account", {"200": _json(_ref("Account"), "account")}, tags=["accounts"]
                )
            },
            "/me/keys": {"get": _op("The calling account's API keys", {"200": KEY_LIST}, tags=["accounts"])},
            "/me/keys/{id}": {
                "delete": _op(
                    "Revoke one of the calling account's API keys (the calling key itself included)",
                    {"200": KEY_REVOKED, "404": KEY_NOT_FOUND, "409": KEY_IS_BOOTSTRAP},
                    params=[KEY_ID_PARAM],
                    tags=["accounts"],
                ),
            },
            "/jwt-keys": {
                "get": _op(
                    "Offline-pointer public keys of this account",
                    {"200": _json({"type": "object"}, "keys")},
                    tags=["offline"],
                ),
                "post": _op(
                    "Add a public key (ES256 or EdDSA) for offline pointers",
                    {"201": _json({"type": "object"}, "added")},
                    body={
                        "type": "object",
                        "required": ["kid", "alg", "publicKey"],
                        "properties": {
                            "kid": {"type": "string"},
                            "alg": {"type": "string", "enum": ["ES256", "EdDSA"]},
                            "publicKey": {"type": "string", "description": "PEM"},
                        },
                    },
                    tags=["offline"],
                ),
            },
            "/jwt-keys/{kid}": {
                "delete": _op(
                    "Remove a public key",
                    {"204": {"description": "removed"}},
                    params=[{"name": "kid", "in": "path", "required": True, "schema": {"type": "string"}}],
                    tags=["offline"],
                ),
            },
            "/jwt-revocations": {
                "post": _op(
                    "Revoke an offline pointer by its jti before first use, for every key of this account "
                    "(other accounts' tokens with the same jti are untouched); 409 once it is in use",
                    {"201": _json({"type": "object"}, "revoked")},
                    body={"type": "object", "required": ["jti"], "properties": {"jti": {"type": "string"}}},
                    tags=["offline"],
                ),
            },
            "/healthz": {
                "get": _op(
                    "200 once the server can serve pulls",
                    {"200": _json({"type": "object"}, "ready")},
                    auth=False,
                    tags=["operations"],
                ),
            },
            "/metrics": {
                "get": _op(
                    "Prometheus metrics",
                    {"200": {"description": "text format"}},
                    auth=False,
                    tags=["operations"],
                ),
            },
            "/openapi.json": {
                "get": _op(
                    "This document",
                    {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                    auth=False,
                    tags=["operations"],
                ),
            },
            "/docs": {
                "get": _op(
                    "Human-readable API reference",
                    {"200": {"description": "HTML"}},
                    auth=False,
                    tags=["operations"],
                ),
            },
            **PAYOUT_PATHS,
        },
    }


def docs_page(document: Json) -> str:
    """A self-contained HTML reference (no scripts or assets from elsewhere)."""
    rows = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            auth = "Bearer" if op.get("security") else "none"
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{auth}</td></tr>"
            )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>spsp-pull API</title>"
        "<link rel='icon' href='data:,'><link rel='stylesheet' href='/static/style.css'>"
        "</head><body><main><h1>spsp-pull API</h1>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
        "Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>auth</th></tr>"
        + "".join(rows)
        + "</table></main></body></html>"
    )
