"""Fixtures of the integration tests: a migrated SQLite database (the embedded mode's
store) and accounts in it. Tests on PostgreSQL define their own `engine`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.storage.db import accounts, make_engine
from core.storage.migrate import upgrade
from core.times import utcnow


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    await engine.dispose()


async def new_account(engine: AsyncEngine, name: str) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(insert(accounts).values(name=name, created_at=utcnow()).returning(accounts.c.id))).scalar_one())
