"""tracking: the accounts' tracking defaults and tracking_firsts (core/tracking)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("track_opens_default", sa.Boolean(), nullable=False, server_default=sa.text("false")))
        batch.add_column(sa.Column("track_clicks_default", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.create_table(
        "tracking_firsts",
        sa.Column("email_id", Id, sa.ForeignKey("emails.id", ondelete="CASCADE",
                                                name="fk_tracking_firsts_email_id_emails"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("email_id", "kind", "recipient", name="pk_tracking_firsts"),
    )


def downgrade() -> None:
    op.drop_table("tracking_firsts")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("track_clicks_default")
        batch.drop_column("track_opens_default")
