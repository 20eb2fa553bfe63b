"""What happened to a transaction whose COMMIT lost its connection.

When the connection breaks while COMMIT is in flight, the client cannot tell whether
the database committed. Answering an error then could deny an email that was stored
(and will be delivered); answering OK could promise one that was not. PostgreSQL
knows: `pg_xact_status` of the transaction's id says committed, aborted or still in
progress. `settle` asks until it gets an answer, or gives up after `patience` seconds
with an Unavailable that tells the caller how to find out (GetStatus, or a retry with
the same idempotency key, which can never make a second email).

SQLite commits locally: a failed COMMIT there did not commit, so it needs no id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sqlalchemy import ColumnElement, literal_column, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.errors import Unavailable

log = logging.getLogger(__name__)

PATIENCE = 5.0  # seconds to wait for the database to say what became of the COMMIT
POLL = 0.2


PG_XID = "pg_current_xact_id()::text"  # the writing transaction's id, in SQL


def xid_column(conn: AsyncConnection) -> ColumnElement[str]:
    """The writing transaction's id as a column to add to a RETURNING clause (so it
    costs no round trip of its own): PostgreSQL's xid as text, or "" on SQLite, where
    a failed COMMIT is known not to have committed."""
    if conn.dialect.name != "postgresql":
        return literal_column("''")
    return literal_column(PG_XID)


async def status(engine: AsyncEngine, xid: str) -> str | None:
    """'committed', 'aborted', 'in progress', or None (unknown, or unreachable)."""
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": xid})
    except (DBAPIError, OSError):
        return None
    return str(found) if found is not None else None


async def settle(
    engine: AsyncEngine, xid: str, message_ids: Sequence[str], error: BaseException, *, patience: float = PATIENCE
) -> None:
    """Return when the transaction `xid` committed; raise Unavailable when it did not,
    or when the database cannot say within `patience` seconds."""
    if not xid:
        raise Unavailable("database unavailable") from error
    deadline = time.monotonic() + patience
    while True:
        outcome = await status(engine, xid)
        if outcome == "committed":
            log.warning("the connection failed during COMMIT, which went through: %d emails accepted", len(message_ids))
            return
        if outcome == "aborted":
            raise Unavailable("database unavailable") from error
        if time.monotonic() >= deadline:
            shown = ", ".join(message_ids[:5]) + (" ..." if len(message_ids) > 5 else "")
            raise Unavailable(
                "the database connection failed while committing and the database could not say whether it "
                f"committed: the email may be stored (look it up with GetStatus: {shown}); retry with the same "
                "idempotency_key, which never makes a second email"
            ) from error
        await asyncio.sleep(POLL)
