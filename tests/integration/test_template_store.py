"""Templates on the embedded mode's database (SQLite): versions and activation, pages,
the Send path's lookups (cached active versions, an account's own templates only),
deletion, and a templated email stored with its template, version and variant through
the real accept path (idempotent replays included)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.service import EmailService, SendOptions
from core.emails.store import Store
from core.emails.validation import SendLimits
from core.errors import InvalidArgument, NotFound
from core.storage.db import emails
from core.templates.manager import TemplateManager
from core.templates.model import Parts, Variant
from core.templates.send import TemplatedSend, resolve
from core.templates.store import TemplateStore
from tests.integration.conftest import new_account

FIELDS = dict(from_address="a@example.com", to=["b@example.com"], cc=[], bcc=[], reply_to="", subject="", text_body="",
              html_body="", headers={}, tags=[], metadata={}, attachments=[], unsubscribe=None)


class Publisher:
    async def publish(self, email_id: int) -> None: ...

    async def publish_many(self, email_ids: list[int]) -> None: ...


async def test_versions_pages_and_lookups_on_sqlite(engine: AsyncEngine) -> None:
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    manager = TemplateManager(TemplateStore(engine), lookup_ttl=60)
    first = await manager.create(a, "one", Parts("S1 {{ n }}", "", "t1"))
    tid = first.template_id
    assert (await manager.for_send(a, tid, 0)).version == 1
    draft = await manager.update(a, tid, "", Parts(), [Variant("x", 1, Parts("X", "", "x")), Variant("y", 0, Parts(
        "Y", "", "y"))], activate=False)
    assert (draft.active_version, draft.latest_version) == (1, 2)
    await manager.activate(a, tid, 2)
    assert (await manager.for_send(a, tid, 0)).version == 2  # this process forgot its cached copy
    assert [v.weight for v in (await manager.get(a, tid)).version.content.variants] == [1, 1]  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument) as caught:
        await manager.for_send(b, tid, 0)
    assert caught.value.violations[0].field == "template_id"
    with pytest.raises(InvalidArgument) as caught:
        await manager.for_send(a, tid, 3)
    assert caught.value.violations[0].field == "template_version"

    for i in range(6):
        await manager.create(a, f"t{i}", Parts(text="x"))
    seen, token = [], ""
    while True:
        page, token = await manager.list(a, page_size=4, page_token=token)
        seen += [t.template_id for t in page]
        if not token:
            break
    assert len(seen) == 7 == len(set(seen)) and seen[-1] == tid
    _, versions, _ = await manager.versions(a, tid)
    assert [v.version for v in versions] == [2, 1]
    with pytest.raises(NotFound):
        await manager.versions(b, tid)

    await manager.delete(a, tid)
    with pytest.raises(InvalidArgument):
        await manager.for_send(a, tid, 0)
    with pytest.raises(NotFound):
        await manager.get(a, tid)


async def test_a_templated_email_is_stored_with_its_template_and_replays_by_key(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    manager = TemplateManager(TemplateStore(engine))
    tid = (await manager.create(a, "ab", Parts(), [Variant("x", 1, Parts("X {{ n }}", "", "x")),
                                                   Variant("y", 1, Parts("Y {{ n }}", "", "y"))])).template_id
    service = EmailService(Store(engine), Publisher())  # type: ignore[arg-type]
    ids = []
    for _ in range(8):
        item = TemplatedSend(FIELDS, tid, 0, {"n": 1}, SendOptions(idempotency_key="same"))
        ids.append((await service.send(a, *await resolve(manager, a, item, SendLimits())))[0])
    assert len(set(ids)) == 1  # every replay found the first email, whichever variant it drew
    async with engine.connect() as conn:
        row = (await conn.execute(select(emails.c.content, emails.c.template_id, emails.c.template_version,
                                         emails.c.template_variant))).one()
    assert (row.template_id, row.template_version) == (tid, 1) and row.template_variant in ("x", "y")
    assert row.content["subject"] == f"{row.template_variant.upper()} 1"
    await service.close()
