"""PostgreSQL statements that take a whole batch of the delivery store's group commits
in one round trip, the batch passed as arrays (unnest), so the SQL text is the same
whatever the batch size: one prepared statement, where `IN (...)` lists and a
statement per row made a new one for every size. SQLite keeps the portable statements
in core.delivery.store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.emails.model import AttemptResult, ClaimedEmail, Status
from core.emails.reads import recipients_to_json

_CLAIM = text(
    "UPDATE emails SET status = :sending, attempts = attempts + 1, updated_at = :now, locked_until = :until"
    " WHERE id = ANY(CAST(:ids AS bigint[])) AND (status = :queued"
    # Due but its publisher has not committed yet: the row is locked, so this waits.
    "  OR (status IN (:deferred, :scheduled) AND next_attempt_at <= :now))"
    " RETURNING id, public_id, account_id, attempts, content, created_at, expires_at, recipients, send_at, test_mode"
)

_SUPPRESSED = text(
    "SELECT s.account_id, s.address, s.reason FROM suppressions s"
    " JOIN unnest(CAST(:accounts AS bigint[]), CAST(:addresses AS text[])) AS p(account_id, address)"
    " ON s.account_id = p.account_id AND s.address = p.address"
)

_FINISH = text(
    "UPDATE emails AS e SET status = v.status, updated_at = :now, locked_until = NULL,"
    " recipients = CAST(v.recipients AS json), last_error = v.last_error, next_attempt_at = v.next_attempt_at,"
    " sent_at = CASE WHEN v.status = :sent THEN :now ELSE e.sent_at END,"
    # DEFERRED: the scheduler publishes it again when due.
    " published_at = CASE WHEN v.status = :deferred THEN NULL ELSE e.published_at END"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS integer[]), CAST(:statuses AS text[]),"
    "             CAST(:recipients AS text[]), CAST(:errors AS text[]), CAST(:nexts AS timestamptz[]))"
    "      AS v(id, attempts, status, recipients, last_error, next_attempt_at)"
    " WHERE e.id = v.id AND e.status = :sending AND e.attempts = v.attempts"
    " RETURNING e.id"
)


async def claim_rows(conn: AsyncConnection, ids: list[int], now: datetime, until: datetime) -> list[Any]:
    """The claimed rows of `ids` (see DeliveryStore.claim)."""
    result = await conn.execute(_CLAIM, {
        "ids": ids, "now": now, "until": until, "sending": Status.SENDING.value, "queued": Status.QUEUED.value,
        "deferred": Status.DEFERRED.value, "scheduled": Status.SCHEDULED.value,
    })
    return list(result.all())


async def suppressed_pairs(conn: AsyncConnection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    ordered = sorted(pairs)
    rows = await conn.execute(_SUPPRESSED, {"accounts": [a for a, _ in ordered], "addresses": [s for _, s in ordered]})
    return {(r.account_id, r.address): r.reason for r in rows}


async def finish_rows(conn: AsyncConnection, items: Sequence[tuple[ClaimedEmail, AttemptResult]], now: datetime) -> list[bool]:
    """Record each attempt's status and recipients in one statement, only where the
    claim is still that attempt's; whether each was recorded. The ids must be distinct."""
    rows = await conn.execute(_FINISH, {
        "now": now, "sent": Status.SENT.value, "deferred": Status.DEFERRED.value, "sending": Status.SENDING.value,
        "ids": [c.id for c, _ in items],
        "attempts": [c.attempts for c, _ in items],
        "statuses": [r.status.value for _, r in items],
        "recipients": [json.dumps(recipients_to_json(r.recipients)) for _, r in items],
        "errors": [r.last_error for _, r in items],
        "nexts": [r.next_attempt_at for _, r in items],
    })
    changed = {row.id for row in rows}
    return [c.id in changed for c, _ in items]
