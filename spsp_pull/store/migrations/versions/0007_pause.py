"""The payer's pause: `pause_since` and `pause_until` on every agreement version (current and recorded);
`pointers.low_warned_cycle`, the cycle whose `allowance.low` event was sent (none yet: NULL).

A version without a pause keeps both NULL; `pause_until` NULL with `pause_since` set is a pause that lasts
until the payer resumes. Existing versions have no pause.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import spsp_pull.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = ("pointers", "pointer_versions")
_COLUMNS = ("pause_since", "pause_until")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _COLUMNS:
                batch.add_column(
                    sa.Column(column, spsp_pull.store.types.UTCDateTime(timezone=True), nullable=True)
                )
    with op.batch_alter_table("pointers") as batch:
        batch.add_column(sa.Column("low_warned_cycle", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Forgets every pause: a paused pointer is active again after the downgrade."""
    with op.batch_alter_table("pointers") as batch:
        batch.drop_column("low_warned_cycle")
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            for column in reversed(_COLUMNS):
                batch.drop_column(column)
