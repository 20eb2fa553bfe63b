"""The `postwire accounts ...` commands' shared step: find an account by name and
change one of its settings, with an engine that is closed afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


def on_account(name: str, change: Callable[[Any, int], Awaitable[object]]) -> bool:
    """Run `change(engine, account_id)` for the account named `name` (the oldest, if
    several share it); False when there is no such account."""
    from sqlalchemy import select

    from core.settings import Settings
    from core.storage.db import accounts, make_engine

    settings = Settings()

    async def run() -> bool:
        engine = make_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                found = await conn.scalar(select(accounts.c.id).where(accounts.c.name == name).order_by(accounts.c.id))
            if found is None:
                return False
            await change(engine, int(found))
            return True
        finally:
            await engine.dispose()

    return asyncio.run(run())
