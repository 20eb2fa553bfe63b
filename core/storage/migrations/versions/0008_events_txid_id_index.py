"""events (txid, id) index for readers across accounts

The webhook fan-out reads the whole log in (txid, id) order from its saved position;
without this index each tick sorted every event ever stored (a sequential scan that
grew with history: 850 ms at 600,000 events).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_events_txid_id', 'events', ['txid', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_txid_id', table_name='events')
