"""Recording hits: OPENED or CLICKED events appended to the account's event log
(core.events.append, the path every feedback event takes, so StreamEvents and webhooks
see them with the same cursor guarantees).

Hits that arrive together share one transaction (core.storage.group_commit), as Sends
do: under load each commit carries every hit that came in while the previous one was
committing, instead of one transaction (and one NOTIFY) per pixel fetch.

`first` is exact, whatever the concurrency: the first hit of a kind for an (email,
recipient) inserts a row into tracking_firsts (primary key email, kind, recipient) in
the event's own transaction (RETURNING says which rows this statement inserted), and
every later one finds it there. Machine hits count too: the first open is the first
fetch of the pixel, by a person or a proxy.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import EventType, NewEvent
from core.events.append import append_events
from core.storage.db import database_errors_as_unavailable, emails, tracking_firsts
from core.storage.group_commit import GroupCommit
from core.times import utcnow
from core.tracking.machine import detail
from core.tracking.tokens import OPEN, Claim

Hit = tuple[Claim, str, str]  # the token's claim, the machine reason ("" for none), the user agent


def _insert_firsts(conn: AsyncConnection, rows: list[dict[str, object]]) -> object:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    c = tracking_firsts.c
    return insert(tracking_firsts).values(rows).on_conflict_do_nothing().returning(c.email_id, c.kind, c.recipient)


class HitRecorder:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer: two transactions that read then write would fail with SQLITE_BUSY.
        parallel = 1 if engine.dialect.name == "sqlite" else 2
        self._group: GroupCommit[Hit, bool | None] = GroupCommit(self.record_many, parallel=parallel)

    async def record(self, claim: Claim, machine: str, user_agent: str) -> bool | None:
        """Append the event; whether it was the first of its kind for that recipient
        (None: no such email for the token's account)."""
        async with database_errors_as_unavailable():
            return await self._group.submit((claim, machine, user_agent))

    async def record_many(self, hits: Sequence[Hit]) -> list[bool | None]:
        """The hits in one transaction, in order."""
        now = utcnow()
        async with self.engine.begin() as conn:
            found = {(r.account_id, r.public_id): r for r in await conn.execute(
                select(emails.c.id, emails.c.account_id, emails.c.public_id, emails.c.recipients)
                .where(emails.c.public_id.in_(sorted({c.message_id for c, _, _ in hits})))
            )}
            keys: list[tuple[int, int, str, str] | None] = []  # (account, email id, kind, recipient) per hit
            for claim, _, _ in hits:
                row = found.get((claim.account_id, claim.message_id))  # another account's email is not found
                if row is None:
                    keys.append(None)
                    continue
                addresses = list(row.recipients or {})
                recipient = addresses[claim.recipient] if 0 <= claim.recipient < len(addresses) else ""
                keys.append((claim.account_id, row.id, claim.kind, recipient))
            rows = [{"email_id": k[1], "kind": k[2], "recipient": k[3]} for k in dict.fromkeys(k for k in keys if k)]
            inserted = {tuple(r) for r in await conn.execute(_insert_firsts(conn, rows))} if rows else set()
            results: list[bool | None] = []
            new: list[tuple[int, int, NewEvent]] = []
            for (claim, machine, user_agent), key in zip(hits, keys):
                if key is None:
                    results.append(None)
                    continue
                first = key[1:] in inserted
                inserted.discard(key[1:])  # a batch's later hits of the same key are repeats
                event_type = EventType.OPENED if claim.kind == OPEN else EventType.CLICKED
                new.append((key[0], key[1], NewEvent(event_type, detail=detail(first, machine, user_agent, claim.url),
                                                     recipient=key[3])))
                results.append(first)
            await append_events(conn, new, now)
        return results
