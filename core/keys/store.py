"""SQL for accounts and API keys. Keys are stored as a keyed hash plus a lookup prefix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.storage.db import accounts, api_keys
from core.times import aware, utcnow


@dataclass(frozen=True)
class KeyRecord:
    id: int
    public_id: str
    account_id: int
    name: str
    prefix: str
    key_hash: str
    kind: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    send_per_minute: int | None
    read_per_minute: int | None
    max_streams: int | None
    account_send_per_minute: int | None = None
    account_read_per_minute: int | None = None


@dataclass(frozen=True)
class NewKey:
    public_id: str
    name: str
    prefix: str
    key_hash: str
    kind: str
    scopes: frozenset[str]
    expires_at: datetime | None = None
    send_per_minute: int | None = None
    read_per_minute: int | None = None
    max_streams: int | None = None


_COLUMNS = (
    api_keys,
    accounts.c.send_per_minute.label("account_send_per_minute"),
    accounts.c.read_per_minute.label("account_read_per_minute"),
)


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        public_id=row.public_id,
        account_id=row.account_id,
        name=row.name,
        prefix=row.prefix,
        key_hash=row.key_hash,
        kind=row.kind,
        scopes=frozenset(s for s in row.scopes.split(",") if s),
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),
        revoked_at=aware(row.revoked_at),
        send_per_minute=row.send_per_minute,
        read_per_minute=row.read_per_minute,
        max_streams=row.max_streams,
        account_send_per_minute=row.account_send_per_minute,
        account_read_per_minute=row.account_read_per_minute,
    )


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    async def find_or_create_account(self, name: str) -> int:
        async with self.engine.begin() as conn:
            found = await conn.scalar(select(accounts.c.id).where(accounts.c.name == name).order_by(accounts.c.id))
            if found is not None:
                return int(found)
            result = await conn.execute(insert(accounts).values(name=name, created_at=utcnow()).returning(accounts.c.id))
            return int(result.scalar_one())

    async def add(self, account_id: int, new: NewKey) -> KeyRecord:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    account_id=account_id,
                    public_id=new.public_id,
                    name=new.name,
                    prefix=new.prefix,
                    key_hash=new.key_hash,
                    kind=new.kind,
                    scopes=",".join(sorted(new.scopes)),
                    created_at=utcnow(),
                    expires_at=new.expires_at,
                    send_per_minute=new.send_per_minute,
                    read_per_minute=new.read_per_minute,
                    max_streams=new.max_streams,
                )
            )
        found = await self.by_prefix(new.prefix)
        assert found is not None
        return found

    async def by_prefix(self, prefix: str) -> KeyRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_COLUMNS)
                    .join(accounts, accounts.c.id == api_keys.c.account_id)
                    .where(api_keys.c.prefix == prefix)
                )
            ).first()
        return _record(row) if row else None

    async def list(self, account_id: int) -> list[KeyRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .join(accounts, accounts.c.id == api_keys.c.account_id)
                .where(api_keys.c.account_id == account_id)
                .order_by(api_keys.c.id.desc())
            )
            return [_record(r) for r in rows]

    async def revoke(self, account_id: int, public_id: str) -> KeyRecord | None:
        """Revoke the account's key (idempotent); None if the account has no such key."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.account_id == account_id,
                    api_keys.c.public_id == public_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            row = (
                await conn.execute(
                    select(*_COLUMNS)
                    .join(accounts, accounts.c.id == api_keys.c.account_id)
                    .where(api_keys.c.account_id == account_id, api_keys.c.public_id == public_id)
                )
            ).first()
        return _record(row) if row else None
