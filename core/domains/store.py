"""SQL for sending domains and their DKIM keys. Every read and write of the API is
scoped to an account: another account's domain is not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domains.records import ACTIVE, RETIRED, Check, KeyRecord
from core.domains.schema import dkim_keys, domains
from core.times import aware, utcnow


@dataclass(frozen=True)
class DomainRecord:
    id: int
    public_id: str
    account_id: int
    name: str
    state: str
    reason: str
    checks: dict[str, Check]
    created_at: datetime
    last_checked_at: datetime | None
    verified_at: datetime | None
    next_check_at: datetime | None
    keys: tuple[KeyRecord, ...]


@dataclass(frozen=True)
class NewKey:
    selector: str
    algorithm: str
    sealed_private_key: str
    public_record: str


@dataclass(frozen=True)
class SealedKey:
    """An active key as the worker needs it (the private key still sealed)."""

    domain: str
    selector: str
    algorithm: str
    sealed_private_key: str


def _key(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row.id, selector=row.selector, algorithm=row.algorithm, state=row.state,
        public_record=row.public_record, created_at=aware(row.created_at),  # type: ignore[arg-type]
        activated_at=aware(row.activated_at),
    )


def _checks(raw: Any) -> dict[str, Check]:
    return {k: Check(v["status"], tuple(v.get("found", ()))) for k, v in (raw or {}).items()}


class DomainStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _records(self, conn: Any, rows: Sequence[Any]) -> list[DomainRecord]:
        ids = [r.id for r in rows]
        keys: dict[int, list[KeyRecord]] = {i: [] for i in ids}
        if ids:
            query = select(dkim_keys).where(dkim_keys.c.domain_id.in_(ids)).order_by(dkim_keys.c.id.desc())
            for k in await conn.execute(query):
                keys[k.domain_id].append(_key(k))
        return [
            DomainRecord(
                id=r.id, public_id=r.public_id, account_id=r.account_id, name=r.name, state=r.state,
                reason=r.reason, checks=_checks(r.checks), created_at=aware(r.created_at),  # type: ignore[arg-type]
                last_checked_at=aware(r.last_checked_at), verified_at=aware(r.verified_at),
                next_check_at=aware(r.next_check_at), keys=tuple(keys[r.id]),
            )
            for r in rows
        ]

    async def create(self, account_id: int, public_id: str, name: str, keys: Sequence[NewKey],
                     next_check_at: datetime) -> DomainRecord | None:
        """The new domain; None if the account already has one of that name."""
        now = utcnow()
        async with self.engine.begin() as conn:
            existing = await conn.scalar(
                select(domains.c.id).where(domains.c.account_id == account_id, domains.c.name == name)
            )
            if existing is not None:
                return None
            domain_id = (
                await conn.execute(
                    insert(domains).values(
                        public_id=public_id, account_id=account_id, name=name, state="pending", reason="",
                        checks={}, created_at=now, next_check_at=next_check_at,
                    ).returning(domains.c.id)
                )
            ).scalar_one()
            await self._add_keys(conn, domain_id, keys, now)
            rows = (await conn.execute(select(domains).where(domains.c.id == domain_id))).all()
            return (await self._records(conn, rows))[0]

    async def _add_keys(self, conn: Any, domain_id: int, keys: Sequence[NewKey], now: datetime) -> None:
        for key in keys:
            await conn.execute(insert(dkim_keys).values(
                domain_id=domain_id, selector=key.selector, algorithm=key.algorithm, state="pending",
                private_key=key.sealed_private_key, public_record=key.public_record, created_at=now,
            ))

    async def get(self, account_id: int, ref: str) -> DomainRecord | None:
        """By public id (`dom_...`) or by name."""
        column = domains.c.public_id if ref.startswith("dom_") else domains.c.name
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(domains).where(domains.c.account_id == account_id, column == ref))).all()
            found = await self._records(conn, rows)
        return found[0] if found else None

    async def list(self, account_id: int, *, after_name: str, limit: int) -> list[DomainRecord]:
        query = (
            select(domains).where(domains.c.account_id == account_id, domains.c.name > after_name)
            .order_by(domains.c.name).limit(limit)
        )
        async with self.engine.connect() as conn:
            return await self._records(conn, (await conn.execute(query)).all())

    async def due(self, now: datetime, limit: int) -> list[DomainRecord]:
        """Domains whose periodic re-check is due (any account), oldest first."""
        query = select(domains).where(domains.c.next_check_at <= now).order_by(domains.c.next_check_at).limit(limit)
        async with self.engine.connect() as conn:
            return await self._records(conn, (await conn.execute(query)).all())

    async def add_key(self, domain_id: int, key: NewKey) -> None:
        async with self.engine.begin() as conn:
            await self._add_keys(conn, domain_id, [key], utcnow())

    async def record_check(self, domain: DomainRecord, *, state: str, reason: str, checks: dict[str, Check],
                           activate: Sequence[int], retire: Sequence[int], drop: Sequence[int],
                           next_check_at: datetime) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "state": state, "reason": reason, "last_checked_at": now, "next_check_at": next_check_at,
            "checks": {k: {"status": c.status, "found": list(c.found)} for k, c in checks.items()},
        }
        if state == "verified" and domain.verified_at is None:
            values["verified_at"] = now
        async with self.engine.begin() as conn:
            await conn.execute(update(domains).where(domains.c.id == domain.id).values(**values))
            if retire:
                await conn.execute(update(dkim_keys).where(dkim_keys.c.id.in_(list(retire))).values(state=RETIRED))
            if activate:
                await conn.execute(
                    update(dkim_keys).where(dkim_keys.c.id.in_(list(activate))).values(state=ACTIVE, activated_at=now)
                )
            if drop:
                await conn.execute(delete(dkim_keys).where(dkim_keys.c.id.in_(list(drop))))

    async def delete(self, account_id: int, domain_id: int) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(delete(dkim_keys).where(dkim_keys.c.domain_id == domain_id))  # SQLite: no cascade
            result = await conn.execute(
                delete(domains).where(domains.c.account_id == account_id, domains.c.id == domain_id)
            )
            return bool(result.rowcount)

    async def verified_names(self, account_id: int) -> frozenset[str]:
        query = select(domains.c.name).where(domains.c.account_id == account_id, domains.c.state == "verified")
        async with self.engine.connect() as conn:
            return frozenset((await conn.scalars(query)).all())

    async def active_keys(self, account_id: int) -> list[SealedKey]:
        """The signing keys of the account's verified domains."""
        query = (
            select(domains.c.name, dkim_keys.c.selector, dkim_keys.c.algorithm, dkim_keys.c.private_key)
            .join(dkim_keys, dkim_keys.c.domain_id == domains.c.id)
            .where(domains.c.account_id == account_id, domains.c.state == "verified", dkim_keys.c.state == ACTIVE)
            .order_by(dkim_keys.c.algorithm.desc(), dkim_keys.c.id)  # rsa-sha256 before ed25519-sha256
        )
        async with self.engine.connect() as conn:
            return [SealedKey(r.name, r.selector, r.algorithm, r.private_key) for r in await conn.execute(query)]
