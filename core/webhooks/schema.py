"""Webhook tables: endpoints, deliveries (one per event and endpoint, the durable retry
queue), attempts (one per HTTP request) and the fan-out's position in the event log.

Imported by core/storage/migrations/env.py so Alembic sees them; same schema on PostgreSQL
and SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from core.storage.db import Id, Timestamp, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", String(200), nullable=False, server_default=""),
    # Comma-separated event types (core.emails.model.EventType values); empty: every type.
    Column("event_types", Text, nullable=False, server_default=""),
    # The signing secret, AES-GCM encrypted under a key derived from the server secret.
    Column("secret", Text, nullable=False),
    # After a rotation, the previous secret (encrypted) signs too until it expires.
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", Timestamp, nullable=True),
    Column("state", String(16), nullable=False, server_default="enabled"),
    Column("disabled_reason", Text, nullable=False, server_default=""),
    Column("disabled_at", Timestamp, nullable=True),
    # Start of the current run of failed attempts; NULL after any success.
    Column("failing_since", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", Id, nullable=False),
    # The webhook-id header: `evt_<event id>` (or `evt_test_...`), the same on every attempt.
    Column("webhook_id", String(60), nullable=False),
    Column("event_id", BigInteger, nullable=True),
    Column("event_type", String(40), nullable=False),
    Column("message_id", String(40), nullable=False, server_default=""),
    # The exact JSON body, fixed at fan-out so every attempt sends the same bytes.
    Column("body", Text, nullable=False),
    # pending → delivering → delivered | failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # As for emails: due at next_attempt_at, published once, claimed until locked_until.
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("published_at", Timestamp, nullable=True),
    Column("locked_until", Timestamp, nullable=True),
    Index("ix_webhook_deliveries_endpoint_id_webhook_id", "endpoint_id", "webhook_id", unique=True),
    Index("ix_webhook_deliveries_published_at_next_attempt_at", "published_at", "next_attempt_at"),
    Index("ix_webhook_deliveries_status_locked_until", "status", "locked_until"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", Timestamp, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=False, server_default=""),
    # delivered, retrying, failed, endpoint_disabled
    Column("outcome", String(20), nullable=False),
    Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),
)

# One row (id 1): the fan-out's position in the event log, as (txid, id).
webhook_dispatch_position = Table(
    "webhook_dispatch_position",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_txid", BigInteger, nullable=False, server_default=text("-1")),
    Column("last_event_id", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", Timestamp, nullable=True),
)
