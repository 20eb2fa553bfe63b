"""The searchable facts of an email (ListEmails, core.emails.search), written at
accept time in the same transaction as the email, into `email_terms`.

Each fact is a term: a kind letter and a 96-bit BLAKE2b digest of the value, so every
index entry has the same small size whatever the value (metadata values run to 1,024
characters). Rows are (account_id, term, created_at, email_id), the primary key in that
order: a filtered page is one index range read newest first, however common or rare
the term, and a further term is one index probe per candidate. The terms survive body
pruning (content_pruned_at): they never read the content again.

Kinds: `r` a recipient (to, cc or bcc), `f` the sender, `t` a tag, `m` a metadata
key=value pair. Addresses are in core.suppressions.write.normalize's form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage.db import email_terms
from core.storage.recordset import recordset_insert, rows_json
from core.suppressions.write import normalize

RECIPIENT, SENDER, TAG, METADATA = "r", "f", "t", "m"

_INSERT = recordset_insert(
    "email_terms", (("account_id", "bigint"), ("term", "text"), ("email_id", "bigint")),
    fixed=(("created_at", "%(now)s"),),
)


def term(kind: str, value: str) -> str:
    """The stored form of one fact."""
    return kind + hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def metadata_term(key: str, value: str) -> str:
    return term(METADATA, f"{key}\0{value}")


def content_terms(content: Mapping[str, Any]) -> set[str]:
    """Every term of a stored content dict (core.emails.content.content_to_dict)."""
    sender = content.get("from") or {}
    found = {term(SENDER, normalize(sender["email"]))} if sender.get("email") else set()
    for field in ("to", "cc", "bcc"):
        found.update(term(RECIPIENT, normalize(a["email"])) for a in content.get(field) or () if a.get("email"))
    found.update(term(TAG, tag) for tag in content.get("tags") or ())
    found.update(metadata_term(k, v) for k, v in (content.get("metadata") or {}).items())
    return found


def term_rows(emails: Iterable[tuple[int, int, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of (account_id, email_id, content) triples."""
    return [
        {"account_id": account_id, "term": t, "email_id": email_id}
        for account_id, email_id, content in emails
        for t in content_terms(content)
    ]


async def insert_terms(conn: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Write the rows (created_at `now`, the emails' own creation time): on PostgreSQL
    one fixed statement (core.storage.recordset), elsewhere executemany."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(_INSERT, {"rows": rows_json(rows), "now": now})
    else:
        await conn.execute(insert(email_terms), [{**row, "created_at": now} for row in rows])
