"""Inbound reports: every message the inbound listener accepted, stored before it
answered 250, and what parsing it led to.

Imported by core/storage/migrations/env.py so Alembic sees it.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, Text

from core.storage.db import Id, Timestamp, metadata

inbound_reports = Table(
    "inbound_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", Timestamp, nullable=False),
    Column("peer", String(64), nullable=False, server_default=""),
    Column("mail_from", Text, nullable=False, server_default=""),
    Column("rcpt_to", Text, nullable=False),  # the bounce address it was sent to
    Column("raw", LargeBinary, nullable=False),
    # received (not parsed yet), bounce, delay, complaint, unsubscribe, ignored (forged,
    # unknown or not a report), unparseable.
    Column("state", String(16), nullable=False, server_default="received"),
    Column("detail", Text, nullable=False, server_default=""),
    Column("account_id", Id, nullable=True),
    Column("message_id", String(40), nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("published_at", Timestamp, nullable=True),
    Column("processed_at", Timestamp, nullable=True),
    Index("ix_inbound_reports_state_received_at", "state", "received_at"),
)
