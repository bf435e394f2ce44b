"""The payout API in OpenAPI 3.1, in the style of `spsp_pull.api.openapi`: `PAYOUT_PATHS` (path items)
and `PAYOUT_SCHEMAS` (component schemas) are merged into the server's document."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

INTEGER_STRING = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "integer (u64) as a string"}
BTC_STRING = {"type": "string", "pattern": "^[0-9]+\\.[0-9]{8}([0-9]{3})?$", "description": "exact bitcoin"}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"oneOf": [TIME, {"type": "null"}]}
STATUS = {
    "type": "string",
    "enum": ["NEW", "QUEUED", "IN_FLIGHT", "SENT", "CONFIRMED", "EXPIRED", "CANCELLED", "FAILED"],
}
METHOD = {"type": "string", "enum": ["BTC-CHAIN", "BTC-LN"]}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PROBLEM = {
    "description": "error",
    "content": {"application/problem+json": {"schema": _ref("Problem")}},
}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
PAYOUT_ID = {
    "name": "payoutId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}


def _op(
    summary: str,
    responses: Json,
    *,
    auth: bool,
    params: list[Json],
    body: Json | None = None,
    optional_body: bool = False,
) -> Json:
    op: Json = {"summary": summary, "responses": {**responses, "default": PROBLEM}, "tags": ["payouts"]}
    if auth:
        op["security"] = [{"bearer": []}]
    if body is not None:
        op["requestBody"] = {"required": not optional_body, "content": {"application/json": {"schema": body}}}
    op["parameters"] = params
    return op


def _query(name: str, description: str, schema: Json | None = None) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


LIST_PARAMS = [
    _query("status", "comma-separated statuses, e.g. QUEUED,IN_FLIGHT"),
    _query("timeFrom", "created at or after (ISO 8601)", TIME),
    _query("timeTo", "created at or before (ISO 8601)", TIME),
    _query("address", "destination address"),
    _query("txid", "transaction id (alias btcTxId)"),
    _query("btcTxId", "transaction id"),
    _query("paymentHash", "Lightning payment hash (hex)"),
    _query("method", "BTC-CHAIN or BTC-LN", METHOD),
    _query("limit", "page size, 1..200 (default 20)", {"type": "integer", "minimum": 1, "maximum": 200}),
    _query("offset", "items to skip", {"type": "integer", "minimum": 0}),
]

PAYOUT_SCHEMAS: Json = {
    "PayoutInput": {
        "type": "object",
        "description": "The amount on one side at most: priceAmount (the most to charge, in the pointer's "
        "minor units) or transferAmount (what must arrive); neither if the destination carries an amount.",
        "required": ["destination"],
        "additionalProperties": False,
        "properties": {
            "destination": {
                "type": "string",
                "description": "Bitcoin address, bitcoin: URI (BIP 21) or BOLT 11",
            },
            "address": {"type": "string", "description": "alias of destination"},
            "priceAmount": {"oneOf": [INTEGER_STRING, {"type": "integer", "minimum": 1}]},
            "priceCurrency": {"type": "string", "description": "must be the pointer's asset code"},
            "transferAmount": {"oneOf": [{"type": "string"}, {"type": "number"}], "description": "decimal"},
            "transferCurrency": {"type": "string", "enum": ["BTC", "SAT", "MSAT"], "default": "BTC"},
            "method": METHOD,
            "payoutMethodId": METHOD,
            "autoApprove": {"type": "boolean", "default": False},
            "notificationUrl": {
                "type": "string",
                "format": "uri",
                "description": "http(s) URL for the payout's status notifications; a public address only "
                "(notification-target-refused otherwise)",
            },
            "comment": {"type": "string", "maxLength": 1000},
            "metadata": {"type": "object"},
        },
    },
    "Payout": {
        "type": "object",
        "properties": {
            "payoutId": {"type": "string", "format": "uuid"},
            "status": STATUS,
            "method": METHOD,
            "destination": {"type": "string"},
            "address": {"type": ["string", "null"]},
            "invoice": {"type": ["string", "null"]},
            "paymentHash": {"type": ["string", "null"]},
            "priceAmount": {
                **INTEGER_STRING,
                "description": "debit in the pointer's minor units, fee included",
            },
            "priceCurrency": {"type": "string"},
            "priceScale": {"type": "integer"},
            "transferAmount": BTC_STRING,
            "transferCurrency": {"type": "string", "const": "BTC"},
            "transferAmountMsat": INTEGER_STRING,
            "transferAmountSat": INTEGER_STRING,
            "feeMsat": INTEGER_STRING,
            "exchangeRate": {
                "type": "string",
                "description": "price of 1 BTC in the pointer's asset (decimal)",
            },
            "amountGivenAs": {"type": "string", "enum": ["price", "transfer"]},
            "createdBy": {"type": "string", "enum": ["owner", "payee", "lnurl"]},
            "createdTime": TIME,
            "expirationTime": TIME,
            "approvalTime": NULLABLE_TIME,
            "approvedBy": {"type": ["string", "null"]},
            "sentTime": NULLABLE_TIME,
            "confirmedTime": NULLABLE_TIME,
            "btcTxId": {"type": ["string", "null"]},
            "failureReason": {"type": ["string", "null"]},
            "notificationUrl": {"type": ["string", "null"]},
            "notificationSecret": {
                "type": "string",
                "description": "only in the create response, when notificationUrl is given: the key of this "
                "payout's Webhook-Signature headers, shown once",
            },
            "comment": {"type": ["string", "null"]},
            "metadata": {"type": ["object", "null"]},
            "proof": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "enum": ["onchain", "lightning"]},
                            "txid": {"type": "string"},
                            "vout": {"type": "integer"},
                            "confirmations": {"type": "integer"},
                            "paymentHash": {"type": "string"},
                            "preimage": {"type": "string"},
                            "routingFeeMsat": INTEGER_STRING,
                        },
                    },
                ]
            },
        },
    },
    "PayoutPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("Payout")},
            "paginationInfo": {
                "type": "object",
                "properties": {
                    "itemsCount": {"type": "integer", "description": "matching payouts in all"},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                },
            },
        },
    },
    "PayoutEvents": {
        "type": "object",
        "properties": {
            "payoutId": {"type": "string"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "time": TIME,
                        "kind": {"type": "string"},
                        "fromStatus": {"oneOf": [STATUS, {"type": "null"}]},
                        "toStatus": {"oneOf": [STATUS, {"type": "null"}]},
                        "detail": {"type": ["object", "null"]},
                    },
                },
            },
        },
    },
    "PayoutLimits": {
        "type": "object",
        "properties": {
            "currency": {"type": "string"},
            "used": {
                "type": "string",
                "description": "used in the current cycle (pulls, payouts, reservations)",
            },
            "available": {"type": "string"},
            "minPayoutAmount": {"type": "string"},
            "methods": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"method": METHOD, "minPayoutAmount": {"type": "string"}},
                },
            },
            "supportedCurrencies": {"type": "array", "items": {"type": "string"}},
            "exchangeRate": {"type": "string"},
            "priceCurrency": {"type": "string"},
            "priceScale": {"type": "integer"},
            "cycle": {"type": "integer"},
            "network": {"type": "string", "enum": ["main", "test", "regtest", "signet"]},
            "lnurl": {"type": "string", "description": "LNURL (bech32) of the pointer's LNURL-withdraw"},
            "lnurlw": {"type": "string", "description": "LUD-17 lnurlw:// form"},
        },
    },
    "LnurlWithdrawRequest": {
        "type": "object",
        "properties": {
            "tag": {"type": "string", "const": "withdrawRequest"},
            "callback": {"type": "string", "format": "uri"},
            "k1": {"type": "string"},
            "defaultDescription": {"type": "string"},
            "minWithdrawable": {"type": "integer", "description": "msat"},
            "maxWithdrawable": {"type": "integer", "description": "msat"},
        },
    },
    "LnurlStatus": {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["OK", "ERROR"]}, "reason": {"type": "string"}},
    },
}


def _payout_paths(prefix: str, *, auth: bool, who: str) -> Json:
    base = [TOKEN]
    one = [TOKEN, PAYOUT_ID]
    payout_ok = _json(_ref("Payout"), "the payout")
    return {
        f"{prefix}/payouts": {
            "post": _op(
                f"Request a payout offer ({who}); NEW with a locked rate, or QUEUED with autoApprove",
                {"201": payout_ok},
                auth=auth,
                params=[*base, IDEMPOTENCY],
                body=_ref("PayoutInput"),
            ),
            "get": _op(
                f"List the pointer's payouts ({who})",
                {"200": _json(_ref("PayoutPage"), "a page")},
                auth=auth,
                params=[*base, *LIST_PARAMS],
            ),
        },
        f"{prefix}/payouts/{{payoutId}}": {
            "get": _op(f"One payout with its proof ({who})", {"200": payout_ok}, auth=auth, params=one),
        },
        f"{prefix}/payouts/{{payoutId}}/approve": {
            "post": _op(
                f"Approve an offer before its expirationTime: QUEUED, allowance reserved ({who})",
                {"200": payout_ok},
                auth=auth,
                params=[*one, IDEMPOTENCY],
                body={"type": "object"},
                optional_body=True,
            ),
        },
        f"{prefix}/payouts/{{payoutId}}/cancel": {
            "post": _op(
                f"Cancel a NEW or QUEUED payout not yet being sent; its reservation is released ({who})",
                {"200": payout_ok},
                auth=auth,
                params=[*one, IDEMPOTENCY],
                body={"type": "object"},
                optional_body=True,
            ),
        },
        f"{prefix}/payouts/{{payoutId}}/events": {
            "get": _op(
                f"The payout's audit trail ({who})",
                {"200": _json(_ref("PayoutEvents"), "events, oldest first")},
                auth=auth,
                params=one,
            ),
        },
        f"{prefix}/payout-limits": {
            "get": _op(
                f"What can be paid out now, and the smallest payout ({who})",
                {"200": _json(_ref("PayoutLimits"), "limits")},
                auth=auth,
                params=[*base, _query("currency", "the pointer's asset (default), BTC, SAT or MSAT")],
            ),
        },
    }


PAYOUT_PATHS: Json = {
    "/payouts": {
        "get": _op(
            "List payouts of all this account's pointers",
            {"200": _json(_ref("PayoutPage"), "a page")},
            auth=True,
            params=[_query("pointer", "only this pointer (its token)"), *LIST_PARAMS],
        ),
    },
    **_payout_paths("/pointers/{token}", auth=True, who="the pointer's owner"),
    **_payout_paths("/{token}", auth=False, who="the payee; the pointer is the capability"),
    "/{token}/lnurlw": {
        "get": _op(
            "LNURL-withdraw (LUD-03): a withdrawRequest with a single-use k1",
            {
                "200": _json(_ref("LnurlWithdrawRequest"), "withdrawRequest"),
                "400": _json(_ref("LnurlStatus"), "ERROR"),
            },
            auth=False,
            params=[TOKEN],
        ),
    },
    "/{token}/lnurlw/callback": {
        "get": _op(
            "LNURL-withdraw callback: pays the invoice `pr` through an auto-approved payout",
            {
                "200": _json(_ref("LnurlStatus"), "OK (paid asynchronously)"),
                "400": _json(_ref("LnurlStatus"), "ERROR"),
            },
            auth=False,
            params=[
                TOKEN,
                _query("k1", "from the withdrawRequest"),
                _query("pr", "BOLT 11 invoice with an amount"),
            ],
        ),
    },
}
