"""Which index drives a ListEmails page (core.emails.search).

A page is read newest first from one index and stops after `limit` matches, so the cost
is the number of candidates read before enough match: it is small when the driving index
holds few entries besides the matches. With several filters the rarest should drive, and
the planner's statistics cannot tell (a term's count in one account, the status mix), so
they are counted, each up to COUNT_CAP, in short index reads: first every term, then the
status/template filter capped at the rarest term's count. When both reach the cap, the
statistics' shares decide between a term and a status. The others are checked per
candidate (one index probe each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage.db import email_terms, emails

COUNT_CAP = 1000
# The share of emails in the statuses, and the share carrying the term, from
# PostgreSQL's statistics (most common values; global, not per account): used only
# when both counts reach the cap. A term absent from the list is taken as rare.
_STATUS_SHARE = text("""
SELECT coalesce(sum(f), 0) FROM pg_stats s, unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(v, f)
 WHERE s.tablename = 'emails' AND s.attname = 'status' AND m.v = ANY(CAST(:statuses AS text[]))
""")
_TERM_SHARES = text("""
SELECT m.v, m.f * (SELECT greatest(reltuples, 0) FROM pg_class WHERE relname = 'email_terms')
              / (SELECT greatest(reltuples, 1) FROM pg_class WHERE relname = 'emails')
  FROM pg_stats s, unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(v, f)
 WHERE s.tablename = 'email_terms' AND s.attname = 'term' AND m.v = ANY(CAST(:terms AS text[]))
""")



@dataclass(frozen=True)
class Plan:
    terms: list[str]  # rarest first
    by_terms: bool  # the first term drives; else the emails table's own indexes


def _capped(rows: Any, cap: int) -> Any:
    return select(func.count()).select_from(rows.limit(cap).subquery()).scalar_subquery()


async def plan(conn: AsyncConnection, account_id: int, terms: list[str], columns: list[Any],
               statuses: list[str] | None = None) -> Plan | None:
    """How to read the page of the `terms` (core.emails.search_terms) and `columns`
    (conditions on the emails table); None when a filter matches no email at all."""
    if not terms or (len(terms) == 1 and not columns):
        return Plan(terms, bool(terms))
    counted = [
        _capped(select(literal(1)).where(email_terms.c.account_id == account_id, email_terms.c.term == t), COUNT_CAP)
        for t in terms
    ]
    found = list((await conn.execute(select(*counted))).one())
    if min(found) == 0:
        return None
    postgresql = conn.dialect.name == "postgresql"
    capped = [t for t, n in zip(terms, found) if n >= COUNT_CAP]
    shares: dict[str, float] = {}
    if postgresql and (len(capped) > 1 or (capped and len(capped) == len(terms) and statuses)):
        shares = {v: float(f) for v, f in (await conn.execute(_TERM_SHARES, {"terms": capped})).all()}
    # Fewest first; among capped counts, the smaller share (a term not in the statistics is rare).
    ordered = [t for *_, t in sorted(zip(found, [shares.get(t, 0.0) for t in terms], range(len(terms)), terms))]
    rarest = min(found)
    if not columns:
        return Plan(ordered, True)
    on_columns = await conn.scalar(select(_capped(
        select(literal(1)).where(emails.c.account_id == account_id, *columns), rarest + 1
    )))
    if not on_columns:
        return None
    if rarest >= COUNT_CAP and on_columns > COUNT_CAP and statuses and postgresql:
        status_share = float(await conn.scalar(_STATUS_SHARE, {"statuses": statuses}) or 0)
        return Plan(ordered, not 0 < status_share < shares.get(ordered[0], 0.0))
    return Plan(ordered, rarest <= on_columns)
