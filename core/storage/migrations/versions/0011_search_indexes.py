"""search_indexes: ListEmails' email_terms table and indexes, existing emails backfilled

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        'email_terms',
        sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('term', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('email_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.PrimaryKeyConstraint('account_id', 'term', 'created_at', 'email_id', name='pk_email_terms'),
    )
    op.create_index('ix_emails_account_id_status_created_at', 'emails', ['account_id', 'status', 'created_at'])
    op.create_index(
        'ix_emails_account_id_template_id_created_at', 'emails', ['account_id', 'template_id', 'created_at'],
        postgresql_where=sa.text('template_id IS NOT NULL'), sqlite_where=sa.text('template_id IS NOT NULL'),
    )
    _backfill()


def _backfill() -> None:
    """Terms of the emails already stored, from their content (addresses, tags and
    metadata stay in it when the body is pruned), in batches by id."""
    from core.emails.search_terms import content_terms  # the one definition of a term

    bind = op.get_bind()
    emails = sa.table('emails', sa.column('id'), sa.column('account_id'), sa.column('created_at'),
                      sa.column('content', sa.JSON))
    terms = sa.table('email_terms', sa.column('account_id'), sa.column('term'), sa.column('created_at'),
                     sa.column('email_id'))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(emails.c.id, emails.c.account_id, emails.c.created_at, emails.c.content)
            .where(emails.c.id > last).order_by(emails.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return
        values = [
            {'account_id': r.account_id, 'term': t, 'created_at': r.created_at, 'email_id': r.id}
            for r in rows if r.content
            for t in content_terms(r.content)
        ]
        if values:
            bind.execute(sa.insert(terms), values)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index('ix_emails_account_id_template_id_created_at', table_name='emails')
    op.drop_index('ix_emails_account_id_status_created_at', table_name='emails')
    op.drop_table('email_terms')
