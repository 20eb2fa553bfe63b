"""Tables and engine creation. The same schema runs on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    text,
)
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.errors import Unavailable

# BIGINT on PostgreSQL; INTEGER on SQLite, where only that type is a rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # Account-wide budgets per minute (NULL: the server defaults).
    Column("send_per_minute", Integer, nullable=True),
    Column("read_per_minute", Integer, nullable=True),
    # Add one-click unsubscribe headers to every Send that does not say otherwise.
    Column("unsubscribe_default", Boolean, nullable=False, server_default=text("false")),
    # Open pixel / tracked links for every Send that does not say otherwise (docs/tracking.md).
    Column("track_opens_default", Boolean, nullable=False, server_default=text("false")),
    Column("track_clicks_default", Boolean, nullable=False, server_default=text("false")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    # The key's first characters, stored in clear to find the row; the rest is secret.
    Column("prefix", String(32), nullable=False, unique=True),
    # HMAC-SHA256(server secret, whole key), hex. The key itself is never stored.
    Column("key_hash", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    Column("public_id", String(40), nullable=True, unique=True),
    Column("kind", String(8), nullable=False, server_default="live"),
    # Comma-separated scopes: send, read, events, admin.
    Column("scopes", String(100), nullable=False, server_default="send,read,events"),
    Column("expires_at", Timestamp, nullable=True),
    # Per-key budgets (NULL: the server defaults).
    Column("send_per_minute", Integer, nullable=True),
    Column("read_per_minute", Integer, nullable=True),
    Column("max_streams", Integer, nullable=True),
)

emails = Table(
    "emails",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("status", String(16), nullable=False),
    # The validated content (core.emails.content.EmailContent as JSON).
    Column("content", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp, nullable=True),
    # Set once the delivery message is confirmed by the broker; the sweeper
    # republishes rows left unpublished (crash or broker outage after commit).
    Column("published_at", Timestamp, nullable=True),
    # While `sending`, the claim holds until then; past it the scheduler re-queues.
    Column("locked_until", Timestamp, nullable=True),
    # When the scheduler should publish the email if it is not published by then:
    # a grace period after Send, send_at for scheduled ones, the retry time for deferred.
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("send_at", Timestamp, nullable=True),
    Column("expires_at", Timestamp, nullable=True),
    # Per-recipient state: {address: {"status": ..., "code": int|None, "message": str}}.
    Column("recipients", JSON, nullable=True),
    # When the body and attachments were removed under the retention policy.
    Column("content_pruned_at", Timestamp, nullable=True),
    # Sent with a test key: stored and reported as delivered, never handed to SMTP.
    Column("test_mode", Boolean, nullable=False, server_default=text("false")),
    # Rendered from a template (core/templates): which one, which version and A/B variant.
    Column("template_id", String(40), nullable=True),
    Column("template_version", Integer, nullable=True),
    Column("template_variant", String(64), nullable=True),
    Index("ix_emails_account_id_created_at", "account_id", "created_at"),
    Index("ix_emails_status_updated_at", "status", "updated_at"),
    Index("ix_emails_published_at_next_attempt_at", "published_at", "next_attempt_at"),
    Index("ix_emails_account_id_status_created_at", "account_id", "status", "created_at"),  # ListEmails by status
    Index("ix_emails_account_id_template_id_created_at", "account_id", "template_id", "created_at",
          postgresql_where=text("template_id IS NOT NULL"), sqlite_where=text("template_id IS NOT NULL")),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    # Lower-cased addr-spec.
    Column("address", String(320), primary_key=True),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    # hard_bounce, complaint, unsubscribe or manual.
    Column("kind", String(16), nullable=False, server_default="hard_bounce"),
    # The email that led to it (its public id; empty for manual entries).
    Column("message_id", String(40), nullable=False, server_default=""),
    Index("ix_suppressions_account_id_created_at", "account_id", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    # SHA-256 of the request's content, to tell a replay from a different request.
    Column("fingerprint", String(64), nullable=False),
    Column("email_id", Id, ForeignKey("emails.id"), nullable=False),
    Column("created_at", Timestamp, nullable=False, index=True),
)

events = Table(
    "events",
    metadata,
    # Monotonic id: the position in the log that cursors encode.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    # NULL for account-level events (e.g. a webhook endpoint disabled).
    Column("email_id", Id, ForeignKey("emails.id"), nullable=True, index=True),
    Column("type", String(16), nullable=False),
    Column("occurred_at", Timestamp, nullable=False),
    Column("smtp_code", Integer, nullable=True),
    Column("smtp_message", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Column("recipient", String(320), nullable=False, default="", server_default=""),
    # The writing transaction's id (PostgreSQL pg_current_xact_id(); 0 on SQLite, whose
    # single writer commits in id order). Streams order by (txid, id) and never hand out
    # a position past the oldest transaction still in flight: see core/events/log.py.
    Column("txid", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_events_account_id_id", "account_id", "id"),
    Index("ix_events_account_id_txid_id", "account_id", "txid", "id"),
    Index("ix_events_txid_id", "txid", "id"),  # readers across accounts (webhook fan-out)
    Index("ix_events_occurred_at", "occurred_at"),
)


email_tags = Table(
    "email_tags",
    metadata,
    Column("email_id", Id, ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("account_id", Id, nullable=False),
    Index("ix_email_tags_account_id_tag", "account_id", "tag"),
)

# One row: how far event pruning has gone, so a stream resumed from an older cursor
# can say its events aged out instead of silently skipping them.
retention = Table(
    "retention",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("events_pruned_txid", BigInteger, nullable=False, server_default=text("0")),
    Column("events_pruned_id", BigInteger, nullable=False, server_default=text("0")),
)

# Open and click tracking (core/tracking): one row per (email, kind, recipient) once it
# was first opened or clicked, so each later hit is told `repeat` exactly.
tracking_firsts = Table(
    "tracking_firsts",
    metadata,
    Column("email_id", Id, ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # open or click
    Column("recipient", String(320), primary_key=True),  # empty: an email with several recipients
)

# ListEmails' searchable facts of each email (core/emails/search_terms.py): the key
# leads with the account and reads newest first for any one term.
email_terms = Table(
    "email_terms",
    metadata,
    Column("account_id", Id, primary_key=True, autoincrement=False),
    Column("term", String(32), primary_key=True),
    Column("created_at", Timestamp, primary_key=True),
    Column("email_id", Id, primary_key=True, autoincrement=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for the URL; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


@asynccontextmanager
async def database_errors_as_unavailable() -> AsyncIterator[None]:
    """Turn 'cannot reach the database' into Unavailable, which clients may retry."""
    try:
        yield
    except OperationalError as exc:
        raise Unavailable("database unavailable") from exc
    except (DBAPIError, OSError) as exc:
        if isinstance(exc, OSError) or exc.connection_invalidated:
            raise Unavailable("database unavailable") from exc
        raise


def sync_url(url: str) -> str:
    """The same database for synchronous use (Alembic)."""
    return url.replace("+aiosqlite", "")


# Templates (core/templates): each update stores a new immutable version; one is active.
templates = Table(
    "templates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("active_version", Integer, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_templates_account_id_created_at", "account_id", "created_at"),
)

template_versions = Table(
    "template_versions",
    metadata,
    Column("template_id", Id, ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    # {"subject", "html", "text", "variants": [{"name", "weight", "subject", "html", "text"}]}
    Column("content", JSON, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
