"""SQL for the suppression list API. Every read and write is scoped to an account:
another account's entries are never seen. Addresses arrive already normalized."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from core.storage.db import suppressions
from core.suppressions.pages import Filters, Position
from core.times import aware


@dataclass(frozen=True)
class SuppressionRecord:
    address: str
    kind: str
    reason: str
    message_id: str
    created_at: datetime


def _record(row: Any) -> SuppressionRecord:
    return SuppressionRecord(row.address, row.kind, row.reason, row.message_id, aware(row.created_at))  # type: ignore[arg-type]


class SuppressionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list(self, account_id: int, filters: Filters, after: Position | None, limit: int) -> list[SuppressionRecord]:
        """Newest first (ties by address, descending), past `after`, at most `limit`."""
        c = suppressions.c
        query = select(suppressions).where(c.account_id == account_id)
        if filters.kind:
            query = query.where(c.kind == filters.kind)
        if filters.created_after is not None:
            query = query.where(c.created_at > filters.created_after)
        if filters.created_before is not None:
            query = query.where(c.created_at < filters.created_before)
        if filters.address_prefix:
            query = query.where(c.address.startswith(filters.address_prefix, autoescape=True))
        if after is not None:
            query = query.where(or_(
                c.created_at < after.created_at, and_(c.created_at == after.created_at, c.address < after.address)
            ))
        query = query.order_by(c.created_at.desc(), c.address.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return [_record(r) for r in await conn.execute(query)]

    async def get(self, account_id: int, addresses: Sequence[str]) -> dict[str, SuppressionRecord]:
        if not addresses:
            return {}
        query = select(suppressions).where(
            suppressions.c.account_id == account_id, suppressions.c.address.in_(sorted(set(addresses)))
        )
        async with self.engine.connect() as conn:
            return {r.address: _record(r) for r in await conn.execute(query)}

    async def add(self, account_id: int, addresses: Sequence[str], kind: str, reason: str,
                  now: datetime) -> tuple[dict[str, SuppressionRecord], set[str]]:
        """Every address's entry after the call, and the addresses that were new (an
        address already listed keeps its entry)."""
        unique = sorted(set(addresses))
        if not unique:
            return {}, set()
        rows = [{"account_id": account_id, "address": a, "kind": kind, "reason": reason, "message_id": "",
                 "created_at": now} for a in unique]
        async with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(suppressions).values(rows).on_conflict_do_nothing()
            created = set((await conn.scalars(insert.returning(suppressions.c.address))).all())
            query = select(suppressions).where(
                suppressions.c.account_id == account_id, suppressions.c.address.in_(unique)
            )
            return {r.address: _record(r) for r in await conn.execute(query)}, created

    async def remove(self, account_id: int, addresses: Sequence[str]) -> dict[str, SuppressionRecord]:
        """The entries removed (addresses that were not listed are absent)."""
        unique = sorted(set(addresses))
        if not unique:
            return {}
        statement = delete(suppressions).where(
            suppressions.c.account_id == account_id, suppressions.c.address.in_(unique)
        ).returning(*suppressions.c)
        async with self.engine.begin() as conn:
            return {r.address: _record(r) for r in await conn.execute(statement)}
