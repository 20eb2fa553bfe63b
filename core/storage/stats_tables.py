"""The analytics tables (core/stats), on the one schema metadata of core/storage/db.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, text

from core.storage.db import Id, Timestamp, metadata

# Analytics (core/stats): counts of events per account, UTC hour and dimension, kept by
# a rollup of the event log that reads each event once (core/stats/rollup.py). They are
# the history: event pruning never touches them. `hour` is hours since the Unix epoch;
# `dimension` is all (key ''), tag (key: the tag, '' untagged), template (key: the
# template id, '' none) or variant (key: the template id, variant: its A/B variant).
STATS_METRICS = (
    "sent", "delivered", "bounced_hard", "bounced_soft", "complained", "unsubscribed", "suppressed", "failed",
    "deferred", "opened", "unique_opened", "machine_opened", "clicked", "unique_clicked", "machine_clicked",
)


def _stats_dimension() -> list[Column[Any]]:
    return [
        Column("account_id", Id, primary_key=True),
        Column("dimension", String(8), primary_key=True),
        Column("hour", BigInteger, primary_key=True),
        Column("key", String(128), primary_key=True),
        Column("variant", String(64), primary_key=True),
    ]


stats_hourly = Table(
    "stats_hourly",
    metadata,
    *_stats_dimension(),
    *[Column(name, BigInteger, nullable=False, server_default=text("0")) for name in STATS_METRICS],
    Index("ix_stats_hourly_account_id_dimension_key_hour", "account_id", "dimension", "key", "hour"),
)

# The same counts per UTC day (`hour`: the day's first hour), for DAY queries.
stats_daily = Table(
    "stats_daily",
    metadata,
    *_stats_dimension(),
    *[Column(name, BigInteger, nullable=False, server_default=text("0")) for name in STATS_METRICS],
    Index("ix_stats_daily_account_id_dimension_key_hour", "account_id", "dimension", "key", "hour"),
)

# Bounces (hard and soft) and deferrals by SMTP reply code (0: none) and recipient domain.
stats_failures = Table(
    "stats_failures",
    metadata,
    *_stats_dimension(),
    Column("kind", String(8), primary_key=True),  # bounce or deferral
    Column("smtp_code", Integer, primary_key=True),
    Column("domain", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Index("ix_stats_failures_account_id_dimension_key_hour", "account_id", "dimension", "key", "hour"),
)

# One row: how far the rollup has read the log, moved in the transaction that adds the
# counts (so a crash counts nothing twice and drops nothing).
stats_rollup_position = Table(
    "stats_rollup_position",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_txid", BigInteger, nullable=False),
    Column("last_event_id", BigInteger, nullable=False),
    # When the newest event counted happened, and when the position last moved.
    Column("last_occurred_at", Timestamp, nullable=True),
    Column("updated_at", Timestamp, nullable=True),
)
