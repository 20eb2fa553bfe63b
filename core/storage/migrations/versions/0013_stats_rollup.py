"""stats rollup: hourly and daily counts per account and dimension, failure patterns, and the
rollup's position in the event log

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_METRICS = (
    "sent", "delivered", "bounced_hard", "bounced_soft", "complained", "unsubscribed", "suppressed", "failed",
    "deferred", "opened", "unique_opened", "machine_opened", "clicked", "unique_clicked", "machine_clicked",
)
_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _dimension() -> list[sa.Column]:
    return [
        sa.Column('account_id', _ID, nullable=False),
        sa.Column('dimension', sa.String(length=8), nullable=False),
        sa.Column('hour', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('variant', sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'stats_hourly',
        *_dimension(),
        *[sa.Column(name, sa.BigInteger(), server_default=sa.text('0'), nullable=False) for name in _METRICS],
        sa.PrimaryKeyConstraint('account_id', 'dimension', 'hour', 'key', 'variant', name=op.f('pk_stats_hourly')),
    )
    op.create_index('ix_stats_hourly_account_id_dimension_key_hour', 'stats_hourly',
                    ['account_id', 'dimension', 'key', 'hour'], unique=False)
    op.create_table(
        'stats_daily',
        *_dimension(),
        *[sa.Column(name, sa.BigInteger(), server_default=sa.text('0'), nullable=False) for name in _METRICS],
        sa.PrimaryKeyConstraint('account_id', 'dimension', 'hour', 'key', 'variant', name=op.f('pk_stats_daily')),
    )
    op.create_index('ix_stats_daily_account_id_dimension_key_hour', 'stats_daily',
                    ['account_id', 'dimension', 'key', 'hour'], unique=False)
    op.create_table(
        'stats_failures',
        *_dimension(),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('smtp_code', sa.Integer(), nullable=False),
        sa.Column('domain', sa.String(length=255), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('account_id', 'dimension', 'hour', 'key', 'variant', 'kind', 'smtp_code', 'domain',
                                name=op.f('pk_stats_failures')),
    )
    op.create_index('ix_stats_failures_account_id_dimension_key_hour', 'stats_failures',
                    ['account_id', 'dimension', 'key', 'hour'], unique=False)
    op.create_table(
        'stats_rollup_position',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_txid', sa.BigInteger(), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.Column('last_occurred_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stats_rollup_position')),
    )
    # From the log's start: the events already stored are counted by the first rounds.
    op.execute("INSERT INTO stats_rollup_position (id, last_txid, last_event_id) VALUES (1, -1, 0)")


def downgrade() -> None:
    op.drop_table('stats_rollup_position')
    op.drop_index('ix_stats_failures_account_id_dimension_key_hour', table_name='stats_failures')
    op.drop_table('stats_failures')
    op.drop_index('ix_stats_daily_account_id_dimension_key_hour', table_name='stats_daily')
    op.drop_table('stats_daily')
    op.drop_index('ix_stats_hourly_account_id_dimension_key_hour', table_name='stats_hourly')
    op.drop_table('stats_hourly')
