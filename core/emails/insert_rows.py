"""The accept path's INSERT of many emails in one statement: on PostgreSQL one fixed
statement whatever the batch size (core.storage.recordset; the multi-row VALUES list it
replaced cost about a tenth of the server's CPU per Send, py-spy on bench/cpu.py),
elsewhere (SQLite, the embedded default) SQLAlchemy's executemany with RETURNING.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage import commit_outcome
from core.storage.db import emails
from core.storage.recordset import recordset_insert, rows_json

# Columns that differ per row, with their PostgreSQL types.
_PER_ROW = (
    ("public_id", "text"), ("account_id", "bigint"), ("status", "text"), ("content", "json"),
    ("next_attempt_at", "timestamptz"), ("send_at", "timestamptz"), ("expires_at", "timestamptz"),
    ("recipients", "json"), ("test_mode", "boolean"),
    ("template_id", "text"), ("template_version", "integer"), ("template_variant", "text"),
)
RECORDSET_INSERT = recordset_insert(
    "emails", _PER_ROW, fixed=(("attempts", "0"), ("last_error", "''"), ("created_at", "%(now)s"), ("updated_at", "%(now)s")),
    returning=f"id, public_id, {commit_outcome.PG_XID}",
)


async def insert_emails(conn: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime) -> tuple[list[int], str]:
    """Insert the rows (each with every column of `_PER_ROW`; attempts 0, no error,
    created and updated `now`); their ids in the rows' order, and the writing
    transaction's id (core.storage.commit_outcome; "" on SQLite)."""
    if not rows:
        return [], ""
    if conn.dialect.name == "postgresql":
        params = {"rows": rows_json(rows), "now": now}
        result = await conn.exec_driver_sql(RECORDSET_INSERT, params)
        by_public_id = {public_id: (int(email_id), xid) for email_id, public_id, xid in result.all()}
        ids = [by_public_id[row["public_id"]][0] for row in rows]
        return ids, next(iter(by_public_id.values()))[1]
    full = [{**row, "attempts": 0, "last_error": "", "created_at": now, "updated_at": now} for row in rows]
    inserted = (
        await conn.execute(
            insert(emails).returning(emails.c.id, commit_outcome.xid_column(conn), sort_by_parameter_order=True), full
        )
    ).all()
    return [int(row[0]) for row in inserted], str(inserted[0][1])
