"""emails remember the template, version and A/B variant they were rendered from

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('emails', sa.Column('template_id', sa.String(length=40), nullable=True))
    op.add_column('emails', sa.Column('template_version', sa.Integer(), nullable=True))
    op.add_column('emails', sa.Column('template_variant', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('emails', 'template_variant')
    op.drop_column('emails', 'template_version')
    op.drop_column('emails', 'template_id')
