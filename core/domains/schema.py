"""Sending-domain tables: an account's domains and their DKIM keys.

Imported by core/storage/migrations/env.py so Alembic sees them; same schema on
PostgreSQL and SQLite. Private keys are stored only encrypted (core.webhooks.signing's
SecretBox, with the key's selector and domain as associated data).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, Text

from core.storage.db import Id, Timestamp, metadata

domains = Table(
    "domains",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    # ASCII (IDNA) form, lower case.
    Column("name", String(253), nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("reason", Text, nullable=False, server_default=""),
    # What the last check found: {"<type> <name>": {"status": ..., "found": [...]}}.
    Column("checks", JSON, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("last_checked_at", Timestamp, nullable=True),
    Column("verified_at", Timestamp, nullable=True),
    Column("next_check_at", Timestamp, nullable=True),
    Index("ix_domains_account_id_name", "account_id", "name", unique=True),
    Index("ix_domains_next_check_at", "next_check_at"),
)

dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("domain_id", Id, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(20), nullable=False),
    # pending (record not found yet), active (signs), retired (replaced; listed until
    # its record is gone from DNS).
    Column("state", String(16), nullable=False),
    Column("private_key", Text, nullable=False),  # sealed
    Column("public_record", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("activated_at", Timestamp, nullable=True),
)
