"""The schema. Ledger tables (versions, reservations, pulls, deliveries) are append-only or state-forward."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from spsp_pull.domain.states import (
    PayoutBatchState,
    PayoutStatus,
    PullKind,
    ReservationKind,
    ReservationState,
    WebhookMessageState,
)
from spsp_pull.store.types import Amount, StateColumn, UTCDateTime, allowed

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The key of the HMAC signatures on this account's webhooks; after a rotation the previous one signs
    # too, until `webhook_secret_previous_until`.
    webhook_secret: Mapped[str] = mapped_column(String(64))
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
    webhook_secret_previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The admin key configured by SPSP_AUTH_TOKEN (or generated on first start): not revocable by the API.
    bootstrap: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JwtKey(Base):
    """A public key an account's wallet signs offline pointers with, chosen by `kid`."""

    __tablename__ = "jwt_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kid: Mapped[str] = mapped_column(String(200), unique=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RevokedJwt(Base):
    """A `jti` the account revoked before first use: no token of its signers with this `jti` registers."""

    __tablename__ = "revoked_jwts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BtpTokenPin(Base):
    """The token an embedded-BTP account name is bound to (its first one): a digest, never the token."""

    __tablename__ = "btp_token_pins"

    account: Mapped[str] = mapped_column(String(1023), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementTerms:
    """The columns of one agreement version: the pointer row holds the current one, `pointer_versions`
    every one."""

    amount: Mapped[int] = mapped_column(Amount)
    interval: Mapped[str] = mapped_column(String(100))
    cycles: Mapped[int] = mapped_column(Integer)
    cap: Mapped[bool] = mapped_column(Boolean)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    expiry: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    anchor: Mapped[datetime] = mapped_column(UTCDateTime)
    base_cycle: Mapped[int] = mapped_column(Integer)
    carry: Mapped[int] = mapped_column(Amount)
    schedule_origin: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The payer's pause (`agreement.Pause`): none when `pause_since` is NULL; no end while `pause_until` is.
    pause_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pause_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Pointer(AgreementTerms, Base):
    """A pull pointer: its current agreement version and its running usage counters.

    The counters make a balance O(1); the ledger tables explain them. "Used" means settled plus reserved.
    """

    __tablename__ = "pointers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    tag: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    origin: Mapped[str] = mapped_column(String(10))  # "online" or "jwt"
    jwt_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Who signed an offline pointer (`offline.py`): "hs256" or "kid:<kid>"; None for online pointers and for
    # offline ones registered before signers were recorded (those match any signer of their account).
    jwt_signer: Mapped[str | None] = mapped_column(String(210), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    webhook: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_json: Mapped[dict[str, object] | None] = mapped_column("metadata", JSON, nullable=True)

    asset_code: Mapped[str] = mapped_column(String(12))
    asset_scale: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)

    pulled_total: Mapped[int] = mapped_column(Amount)
    reserved_total: Mapped[int] = mapped_column(Amount)
    used_since_anchor: Mapped[int] = mapped_column(Amount)
    used_in_cycle: Mapped[int] = mapped_column(Amount)
    usage_cycle: Mapped[int] = mapped_column(Integer)

    sender: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sender_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The global cycle whose `allowance.low` event was sent (`store.allowance_low`): once per cycle.
    low_warned_cycle: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_pointers_account_created", "account_id", "id"),
        UniqueConstraint("jwt_id", "account_id", "jwt_signer", name="uq_pointers_jwt_signer"),
    )


class PointerVersion(AgreementTerms, Base):
    __tablename__ = "pointer_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pointer_id: Mapped[int] = mapped_column(ForeignKey("pointers.id"))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(20))  # "created", "updated", "paused", "resumed", "cancelled"

    __table_args__ = (UniqueConstraint("pointer_id", "number"),)


class Reservation(Base):
    """Allowance held for value about to leave. Open until settled (with what left) or released."""

    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pointer_id: Mapped[int] = mapped_column(ForeignKey("pointers.id"), index=True)
    amount: Mapped[int] = mapped_column(Amount)
    kind: Mapped[ReservationKind] = mapped_column(StateColumn(ReservationKind, 10))
    version: Mapped[int] = mapped_column(Integer)
    cycle: Mapped[int] = mapped_column(Integer)
    state: Mapped[ReservationState] = mapped_column(StateColumn(ReservationState, 10))
    settled: Mapped[int] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_reservations_open", "state", "lease_until"),
        CheckConstraint(allowed("kind", ReservationKind), name="kind"),
        CheckConstraint(allowed("state", ReservationState), name="state"),
    )


class Pull(Base):
    """One entry of the ledger: value that left against a pointer."""

    __tablename__ = "pulls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pointer_id: Mapped[int] = mapped_column(ForeignKey("pointers.id"))
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"), nullable=True)
    amount: Mapped[int] = mapped_column(Amount)
    kind: Mapped[PullKind] = mapped_column(StateColumn(PullKind, 10))
    cycle: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_pulls_pointer", "pointer_id", "id"),
        CheckConstraint(allowed("kind", PullKind), name="kind"),
    )


class PushPayment(Base):
    __tablename__ = "push_payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount: Mapped[int] = mapped_column(Amount)
    asset_code: Mapped[str] = mapped_column(String(12))
    asset_scale: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(1023), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotentRequest(Base):
    __tablename__ = "idempotent_requests"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebhookMessage(Base):
    """The durable outbox: one row per notification, delivered with retries by the webhook worker."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pointer_id: Mapped[int | None] = mapped_column(ForeignKey("pointers.id"), nullable=True)
    # Whose deliveries this counts among (fair shares), and whose secret signs it: the payout's for a
    # payout notification, else the account's.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"), nullable=True)
    url: Mapped[str] = mapped_column(Text)
    destination: Mapped[str | None] = mapped_column(String(300), nullable=True)  # scheme://host[:port]
    event: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[WebhookMessageState] = mapped_column(StateColumn(WebhookMessageState, 10))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_outbox_due", "state", "next_attempt_at"),
        CheckConstraint(allowed("state", WebhookMessageState), name="state"),
    )


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_outbox.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class ServerSetting(Base):
    """Secrets and settings shared by every instance (e.g. the STREAM server secret)."""

    __tablename__ = "server_settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PayoutBatch(Base):
    """One on-chain transaction paying a window's payouts. Its txid and hex are stored before it is
    broadcast, so a restart broadcasts the same transaction again instead of paying twice."""

    __tablename__ = "payout_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[PayoutBatchState] = mapped_column(StateColumn(PayoutBatchState, 12))
    txid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    tx_hex: Mapped[str | None] = mapped_column(Text, nullable=True)
    fee_sat: Mapped[int | None] = mapped_column(Amount, nullable=True)
    inputs: Mapped[list[list[object]] | None] = mapped_column(JSON, nullable=True)
    confirmations: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    broadcast_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_payout_batches_state", "state", "id"),
        CheckConstraint(allowed("state", PayoutBatchState), name="state"),
    )


class Payout(Base):
    """A payout of a pointer's allowance to a Bitcoin address or a Lightning invoice (an offer until
    approved). Amounts: `debit` in the pointer's minor units, `transfer_msat` / `fee_msat` in msat."""

    __tablename__ = "payouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    pointer_id: Mapped[int] = mapped_column(ForeignKey("pointers.id"))
    account_id: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(10))  # "owner", "payee", "lnurl"
    rail: Mapped[str] = mapped_column(String(10))  # "onchain", "lightning"
    destination: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    script_pubkey: Mapped[str | None] = mapped_column(String(200), nullable=True)
    invoice: Mapped[str | None] = mapped_column(Text, nullable=True)
    payment_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # The payment hash while the payout is live: one live payout per invoice (LND pays a hash once).
    live_payment_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    amount_side: Mapped[str] = mapped_column(String(10))  # "price", "transfer"
    transfer_msat: Mapped[int] = mapped_column(Amount)
    fee_msat: Mapped[int] = mapped_column(Amount)
    debit: Mapped[int] = mapped_column(Amount)
    asset_code: Mapped[str] = mapped_column(String(12))
    asset_scale: Mapped[int] = mapped_column(Integer)
    rate: Mapped[str] = mapped_column(String(100))
    status: Mapped[PayoutStatus] = mapped_column(StateColumn(PayoutStatus, 12))
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("payout_batches.id"), nullable=True, index=True)
    vout: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    preimage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    routing_fee_msat: Mapped[int | None] = mapped_column(Amount, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(10), nullable=True)
    notification_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    notification_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)  # signs this payout's
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_json: Mapped[dict[str, object] | None] = mapped_column("metadata", JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_payouts_pointer", "pointer_id", "id"),
        Index("ix_payouts_account", "account_id", "id"),
        Index("ix_payouts_work", "status", "rail", "id"),
        CheckConstraint(allowed("status", PayoutStatus), name="status"),
    )


class PayoutEvent(Base):
    """The append-only audit trail of a payout: every transition and every backend verdict."""

    __tablename__ = "payout_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_payout_events_payout", "payout_id", "id"),)


class LnurlWithdrawal(Base):
    """A LUD-03 withdrawRequest handed out for a pointer: a single-use `k1` (stored hashed) with the rate
    and the bounds it was offered at."""

    __tablename__ = "lnurl_withdrawals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pointer_id: Mapped[int] = mapped_column(ForeignKey("pointers.id"), index=True)
    k1_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rate: Mapped[str] = mapped_column(String(100))
    min_msat: Mapped[int] = mapped_column(Amount)
    max_msat: Mapped[int] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"), nullable=True)
