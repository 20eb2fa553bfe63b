"""templates and their immutable versions (core/templates)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('templates',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=False),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_templates_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('public_id', name=op.f('uq_templates_public_id'))
    )
    op.create_index('ix_templates_account_id_created_at', 'templates', ['account_id', 'created_at'], unique=False)
    op.create_table('template_versions',
    sa.Column('template_id', _ID, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_template_versions_template_id_templates'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('template_id', 'version', name=op.f('pk_template_versions'))
    )


def downgrade() -> None:
    op.drop_table('template_versions')
    op.drop_index('ix_templates_account_id_created_at', table_name='templates')
    op.drop_table('templates')
