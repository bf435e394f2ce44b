"""Offline-pointer jti scoped to its signer; BTP token pins in the database; idempotency claims expire.

- `pointers.jwt_signer` ("hs256" or "kid:<kid>"); a `jti` is unique per (account, signer), no longer across
  the server. Offline pointers registered before keep a NULL signer: they still answer to their account's
  tokens with their `jti` (they were unique per account already), so none is registered a second time.
- `revoked_jwts` keyed by (account, jti): one account's revocation never touches another's tokens.
- `btp_token_pins`: the token digest each embedded-BTP account name is bound to.
- `idempotent_requests.created_at` indexed, for the purge of expired claims and old responses.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import spsp_pull.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pointers") as batch:
        batch.add_column(sa.Column("jwt_signer", sa.String(length=210), nullable=True))
        batch.drop_constraint("uq_pointers_jwt_id", type_="unique")
        batch.create_unique_constraint("uq_pointers_jwt_signer", ["jwt_id", "account_id", "jwt_signer"])
    with op.batch_alter_table("revoked_jwts") as batch:
        batch.drop_constraint("pk_revoked_jwts", type_="primary")
        batch.create_primary_key("pk_revoked_jwts", ["account_id", "jti"])
    op.create_table(
        "btp_token_pins",
        sa.Column("account", sa.String(length=1023), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("pinned_at", spsp_pull.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_btp_token_pins")),
    )
    with op.batch_alter_table("idempotent_requests") as batch:
        batch.create_index(batch.f("ix_idempotent_requests_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    """Fails if two signers (or two accounts) have used one jti since the upgrade: that cannot be undone."""
    with op.batch_alter_table("idempotent_requests") as batch:
        batch.drop_index(batch.f("ix_idempotent_requests_created_at"))
    op.drop_table("btp_token_pins")
    with op.batch_alter_table("revoked_jwts") as batch:
        batch.drop_constraint("pk_revoked_jwts", type_="primary")
        batch.create_primary_key("pk_revoked_jwts", ["jti"])
    with op.batch_alter_table("pointers") as batch:
        batch.drop_constraint("uq_pointers_jwt_signer", type_="unique")
        batch.create_unique_constraint("uq_pointers_jwt_id", ["jwt_id"])
        batch.drop_column("jwt_signer")
