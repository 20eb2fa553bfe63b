"""SQL for templates and their versions. Every read and write is scoped to an account:
another account's templates are never seen (a template is found by account and public
id together). A version, once inserted, is never updated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.storage.db import template_versions, templates
from core.templates.model import Content, TemplateRecord, Version
from core.templates.pages import Position
from core.times import aware

_T, _V = templates.c, template_versions.c


def _record(row: Any, version: Version | None = None) -> TemplateRecord:
    return TemplateRecord(row.public_id, row.name, row.active_version, row.latest_version,
                          aware(row.created_at), aware(row.updated_at), version)  # type: ignore[arg-type]


def _version(row: Any) -> Version:
    return Version(row.version, Content.from_json(row.content), aware(row.created_at))  # type: ignore[arg-type]


class TemplateStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, account_id: int, public_id: str, name: str, content: Content,
                     now: datetime) -> TemplateRecord:
        async with self.engine.begin() as conn:
            row = (await conn.execute(insert(templates).values(
                public_id=public_id, account_id=account_id, name=name, active_version=1, latest_version=1,
                created_at=now, updated_at=now,
            ).returning(*templates.c))).one()
            await conn.execute(insert(template_versions).values(
                template_id=row.id, version=1, content=content.to_json(), created_at=now
            ))
        return _record(row, Version(1, content, now))

    async def get(self, account_id: int, public_id: str, version: int = 0) -> tuple[TemplateRecord, Version | None] | None:
        """The template with version `version` (0: the active one; None when it has no
        such version); None when the account has no such template."""
        async with self.engine.connect() as conn:
            row = await self._row(conn, account_id, public_id)
            if row is None:
                return None
            found = (await conn.execute(select(template_versions).where(
                _V.template_id == row.id, _V.version == (version or row.active_version)
            ))).first()
        return _record(row), _version(found) if found is not None else None

    async def list(self, account_id: int, after: Position | None, limit: int) -> list[TemplateRecord]:
        """Newest first (ties by public id, descending), past `after`, at most `limit`."""
        query = select(templates).where(_T.account_id == account_id)
        if after is not None:
            query = query.where(or_(_T.created_at < after.created_at,
                                    and_(_T.created_at == after.created_at, _T.public_id < after.template_id)))
        query = query.order_by(_T.created_at.desc(), _T.public_id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return [_record(r) for r in await conn.execute(query)]

    async def add_version(self, account_id: int, public_id: str, name: str, content: Content, activate: bool,
                          now: datetime) -> TemplateRecord | None:
        """Store the next version (numbers taken under the template row's lock, so
        concurrent updates get distinct numbers); None when there is no such template."""
        values: dict[str, Any] = {"latest_version": _T.latest_version + 1, "updated_at": now}
        if name:
            values["name"] = name
        if activate:
            values["active_version"] = _T.latest_version + 1
        async with self.engine.begin() as conn:
            row = (await conn.execute(update(templates).where(
                _T.account_id == account_id, _T.public_id == public_id
            ).values(**values).returning(*templates.c))).first()
            if row is None:
                return None
            await conn.execute(insert(template_versions).values(
                template_id=row.id, version=row.latest_version, content=content.to_json(), created_at=now
            ))
        return _record(row, Version(row.latest_version, content, now))

    async def activate(self, account_id: int, public_id: str, version: int,
                       now: datetime) -> tuple[TemplateRecord | None, bool]:
        """(the template after the change, whether the version exists); (None, False)
        when there is no such template."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, account_id, public_id)
            if row is None:
                return None, False
            found = (await conn.execute(select(template_versions).where(
                _V.template_id == row.id, _V.version == version
            ))).first()
            if found is None:
                return _record(row), False
            row = (await conn.execute(update(templates).where(_T.id == row.id).values(
                active_version=version, updated_at=now
            ).returning(*templates.c))).one()
        return _record(row, _version(found)), True

    async def delete(self, account_id: int, public_id: str) -> bool:
        async with self.engine.begin() as conn:
            row = await self._row(conn, account_id, public_id)
            if row is None:
                return False
            await conn.execute(delete(template_versions).where(_V.template_id == row.id))
            await conn.execute(delete(templates).where(_T.id == row.id))
        return True

    async def versions(self, account_id: int, public_id: str, before: int,
                       limit: int) -> tuple[TemplateRecord, list[Version]] | None:
        """Versions newest first, numbered below `before` (0: from the latest)."""
        async with self.engine.connect() as conn:
            row = await self._row(conn, account_id, public_id)
            if row is None:
                return None
            query = select(template_versions).where(_V.template_id == row.id)
            if before:
                query = query.where(_V.version < before)
            rows = await conn.execute(query.order_by(_V.version.desc()).limit(limit))
            return _record(row), [_version(r) for r in rows]

    async def active_versions(self, account_id: int) -> dict[str, int]:
        """Every template of the account: public id → active version (the Send path's map)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(_T.public_id, _T.active_version).where(_T.account_id == account_id))
            return {r.public_id: r.active_version for r in rows}

    async def content(self, account_id: int, public_id: str, version: int) -> Content | None:
        async with self.engine.connect() as conn:
            found = (await conn.execute(
                select(_V.content).select_from(template_versions.join(templates, templates.c.id == _V.template_id))
                .where(_T.account_id == account_id, _T.public_id == public_id, _V.version == version)
            )).first()
        return Content.from_json(found.content) if found is not None else None

    async def _row(self, conn: AsyncConnection, account_id: int, public_id: str) -> Any:
        return (await conn.execute(select(templates).where(
            _T.account_id == account_id, _T.public_id == public_id
        ))).first()
