"""Bitcoin / Lightning payouts: payouts, their audit trail, on-chain batches and LNURL-withdraw links.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spsp_pull.store.types import Amount, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _amount(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, Amount(precision=40, scale=0), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "payout_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("txid", sa.String(length=64), nullable=True),
        sa.Column("tx_hex", sa.Text(), nullable=True),
        _amount("fee_sat", nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        _time("created_at"),
        _time("claimed_until", nullable=True),
        _time("signed_at", nullable=True),
        _time("broadcast_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_batches")),
    )
    op.create_index("ix_payout_batches_state", "payout_batches", ["state", "id"], unique=False)
    op.create_index(op.f("ix_payout_batches_txid"), "payout_batches", ["txid"], unique=False)
    op.create_table(
        "payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("pointer_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=10), nullable=False),
        sa.Column("rail", sa.String(length=10), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=True),
        sa.Column("script_pubkey", sa.String(length=200), nullable=True),
        sa.Column("invoice", sa.Text(), nullable=True),
        sa.Column("payment_hash", sa.String(length=64), nullable=True),
        sa.Column("live_payment_hash", sa.String(length=64), nullable=True),
        sa.Column("amount_side", sa.String(length=10), nullable=False),
        _amount("transfer_msat"),
        _amount("fee_msat"),
        _amount("debit"),
        sa.Column("asset_code", sa.String(length=12), nullable=False),
        sa.Column("asset_scale", sa.Integer(), nullable=False),
        sa.Column("rate", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("vout", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("claimed_until", nullable=True),
        sa.Column("preimage", sa.String(length=64), nullable=True),
        _amount("routing_fee_msat", nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.String(length=10), nullable=True),
        sa.Column("notification_url", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        _time("created_at"),
        _time("expires_at"),
        _time("approved_at", nullable=True),
        _time("sent_at", nullable=True),
        _time("confirmed_at", nullable=True),
        _time("closed_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["payout_batches.id"], name=op.f("fk_payouts_batch_id_payout_batches")
        ),
        sa.ForeignKeyConstraint(["pointer_id"], ["pointers.id"], name=op.f("fk_payouts_pointer_id_pointers")),
        sa.ForeignKeyConstraint(
            ["reservation_id"], ["reservations.id"], name=op.f("fk_payouts_reservation_id_reservations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("live_payment_hash", name=op.f("uq_payouts_live_payment_hash")),
        sa.UniqueConstraint("public_id", name=op.f("uq_payouts_public_id")),
    )
    op.create_index("ix_payouts_account", "payouts", ["account_id", "id"], unique=False)
    op.create_index(op.f("ix_payouts_address"), "payouts", ["address"], unique=False)
    op.create_index(op.f("ix_payouts_batch_id"), "payouts", ["batch_id"], unique=False)
    op.create_index(op.f("ix_payouts_payment_hash"), "payouts", ["payment_hash"], unique=False)
    op.create_index("ix_payouts_pointer", "payouts", ["pointer_id", "id"], unique=False)
    op.create_index("ix_payouts_work", "payouts", ["status", "rail", "id"], unique=False)
    op.create_table(
        "lnurl_withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pointer_id", sa.Integer(), nullable=False),
        sa.Column("k1_hash", sa.String(length=64), nullable=False),
        sa.Column("rate", sa.String(length=100), nullable=False),
        _amount("min_msat"),
        _amount("max_msat"),
        _time("created_at"),
        _time("expires_at"),
        _time("used_at", nullable=True),
        sa.Column("payout_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_lnurl_withdrawals_payout_id_payouts")
        ),
        sa.ForeignKeyConstraint(
            ["pointer_id"], ["pointers.id"], name=op.f("fk_lnurl_withdrawals_pointer_id_pointers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lnurl_withdrawals")),
        sa.UniqueConstraint("k1_hash", name=op.f("uq_lnurl_withdrawals_k1_hash")),
    )
    op.create_index(
        op.f("ix_lnurl_withdrawals_pointer_id"), "lnurl_withdrawals", ["pointer_id"], unique=False
    )
    op.create_table(
        "payout_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payout_id", sa.Integer(), nullable=False),
        _time("at"),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_payout_events_payout_id_payouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_events")),
    )
    op.create_index("ix_payout_events_payout", "payout_events", ["payout_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payout_events_payout", table_name="payout_events")
    op.drop_table("payout_events")
    op.drop_index(op.f("ix_lnurl_withdrawals_pointer_id"), table_name="lnurl_withdrawals")
    op.drop_table("lnurl_withdrawals")
    for index in ("ix_payouts_work", "ix_payouts_pointer", "ix_payouts_account"):
        op.drop_index(index, table_name="payouts")
    for column in ("payment_hash", "batch_id", "address"):
        op.drop_index(op.f(f"ix_payouts_{column}"), table_name="payouts")
    op.drop_table("payouts")
    op.drop_index(op.f("ix_payout_batches_txid"), table_name="payout_batches")
    op.drop_index("ix_payout_batches_state", table_name="payout_batches")
    op.drop_table("payout_batches")
