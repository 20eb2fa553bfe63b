"""The account's tracking defaults (accounts.track_opens_default / track_clicks_default),
for emails whose Send left `track_opens` / `track_clicks` unset. Read by the delivery
worker through a short per-account cache, so a change reaches delivery within seconds."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.per_account import PerAccount
from core.storage.db import accounts, database_errors_as_unavailable


class TrackingDefaults:
    def __init__(self, engine: AsyncEngine, ttl: float = 5.0) -> None:
        self.engine = engine
        self._cache: PerAccount[tuple[bool, bool]] = PerAccount(self._load, ttl)

    async def _load(self, account_id: int) -> tuple[bool, bool]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(accounts.c.track_opens_default, accounts.c.track_clicks_default).where(accounts.c.id == account_id)
            )).first()
        return (bool(row[0]), bool(row[1])) if row is not None else (False, False)

    async def get(self, account_id: int) -> tuple[bool, bool]:
        """(opens, clicks) for that account."""
        hit = self._cache.fresh(account_id)
        if hit is not None:
            return hit[0]
        async with database_errors_as_unavailable():
            return await self._cache.get(account_id)

    async def set(self, account_id: int, *, opens: bool | None = None, clicks: bool | None = None) -> bool:
        """Change one or both; False when there is no such account."""
        values = {k: v for k, v in (("track_opens_default", opens), ("track_clicks_default", clicks)) if v is not None}
        async with self.engine.begin() as conn:
            result = await conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
        self._cache.forget(account_id)
        return bool(result.rowcount)
