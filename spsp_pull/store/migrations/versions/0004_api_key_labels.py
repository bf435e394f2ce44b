"""API keys get an optional label and a flag for the configured admin key (which the API cannot revoke).

The flag is set on the configured key by the next start (`ensure_admin`); until then no key has it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("label", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("bootstrap", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("bootstrap")
        batch.drop_column("label")
