"""Adding to the suppression list inside a caller's transaction, and the one way
addresses are compared (`normalize`), used everywhere an address meets the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage.db import suppressions

HARD_BOUNCE, COMPLAINT, UNSUBSCRIBE, MANUAL = "hard_bounce", "complaint", "unsubscribe", "manual"
KINDS = (HARD_BOUNCE, COMPLAINT, UNSUBSCRIBE, MANUAL)
MAX_REASON = 1000


def normalize(address: str) -> str:
    """The form an address is stored and compared in: lower case, the domain in its
    ASCII (IDNA) form."""
    local, _, domain = address.strip().rpartition("@")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode()
        except UnicodeError:
            pass
    return f"{local}@{domain}".lower() if local else address.strip().lower()


@dataclass(frozen=True)
class Entry:
    address: str
    kind: str
    reason: str = ""
    message_id: str = ""  # the email that led to it


async def suppress(conn: AsyncConnection, account_id: int, entries: Sequence[Entry], now: datetime) -> None:
    """Add the entries; an address already on the list keeps its first entry."""
    if not entries:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [
        {"account_id": account_id, "address": normalize(e.address), "kind": e.kind, "reason": e.reason[:MAX_REASON],
         "message_id": e.message_id, "created_at": now}
        for e in entries
    ]
    await conn.execute(dialect.insert(suppressions).values(rows).on_conflict_do_nothing())
