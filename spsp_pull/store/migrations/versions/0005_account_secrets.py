"""Per-account webhook signing secrets and per-payout notification secrets.

Every account gets its own random secret (replacing the one secret all accounts shared, and the bearer
token every webhook carried, both dropped from the server settings). Outbox messages learn whose they are
(account, payout) and where they go (scheme://host[:port]), for signing at delivery and for per-account and
per-destination delivery limits; messages already queued belong to their pointer's account.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from spsp_pull.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_DROPPED_SETTINGS = ("webhook_signing_secret", "webhook_bearer_token")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("webhook_secret_previous", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("webhook_secret_previous_until", UTCDateTime(timezone=True), nullable=True)
        )
    accounts = sa.table("accounts", sa.column("id", sa.Integer), sa.column("webhook_secret", sa.String))
    connection = op.get_bind()
    for (account_id,) in connection.execute(sa.select(accounts.c.id)).all():
        connection.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(webhook_secret=secrets.token_urlsafe(32))
        )
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("webhook_secret", existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("notification_secret", sa.String(length=64), nullable=True))

    with op.batch_alter_table("webhook_outbox") as batch:
        batch.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("payout_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("destination", sa.String(length=300), nullable=True))
        batch.create_foreign_key(
            op.f("fk_webhook_outbox_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_webhook_outbox_payout_id_payouts"), "payouts", ["payout_id"], ["id"]
        )
    outbox = sa.table(
        "webhook_outbox",
        sa.column("pointer_id", sa.Integer),
        sa.column("account_id", sa.Integer),
    )
    pointers = sa.table("pointers", sa.column("id", sa.Integer), sa.column("account_id", sa.Integer))
    connection.execute(
        outbox.update()
        .where(outbox.c.pointer_id.is_not(None))
        .values(
            account_id=sa.select(pointers.c.account_id)
            .where(pointers.c.id == outbox.c.pointer_id)
            .scalar_subquery()
        )
    )
    settings = sa.table("server_settings", sa.column("name", sa.String))
    connection.execute(settings.delete().where(settings.c.name.in_(_DROPPED_SETTINGS)))


def downgrade() -> None:
    with op.batch_alter_table("webhook_outbox") as batch:
        batch.drop_constraint(op.f("fk_webhook_outbox_payout_id_payouts"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_webhook_outbox_account_id_accounts"), type_="foreignkey")
        batch.drop_column("destination")
        batch.drop_column("payout_id")
        batch.drop_column("account_id")
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("notification_secret")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("webhook_secret_previous_until")
        batch.drop_column("webhook_secret_previous")
        batch.drop_column("webhook_secret")
