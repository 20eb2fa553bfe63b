"""The suppression list API's use cases on the embedded mode's database (SQLite): the
same keyset pages, filters, idempotent adds and removals as on PostgreSQL, and the
entries delivery writes (core.suppressions.write) read back with their kind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import InvalidArgument, NotFound
from core.suppressions.manager import SuppressionManager, filters
from core.suppressions.store import SuppressionStore
from core.suppressions.write import COMPLAINT, HARD_BOUNCE, Entry, suppress
from core.times import utcnow
from tests.integration.conftest import new_account


async def test_pages_filters_adds_and_removes_on_sqlite(engine: AsyncEngine) -> None:
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    manager = SuppressionManager(SuppressionStore(engine))
    base = utcnow() - timedelta(days=1)
    async with engine.begin() as conn:
        for i in range(30):
            await suppress(conn, a, [Entry(f"b{i:02}@Example.com", HARD_BOUNCE, "550 no such user", "msg_1")],
                           base + timedelta(minutes=i % 10))
        await suppress(conn, a, [Entry("spam@example.com", COMPLAINT, "abuse report", "msg_2")], base)
    added = await manager.batch_add(a, [f"m{i}@example.org" for i in range(25)] + ["bad", "B00@example.com"], "import")
    assert [o.created for o in added[:25]] == [True] * 25
    assert added[25].error is not None and added[25].error.code == "INVALID_ARGUMENT"
    assert added[26].record is not None and added[26].record.kind == HARD_BOUNCE and not added[26].created

    seen, token = [], ""
    while True:
        page, token = await manager.list(a, filters(), page_size=7, page_token=token)
        seen += [r.address for r in page]
        if not token:
            break
    assert len(seen) == 56 == len(set(seen))
    assert seen[:25] == sorted((f"m{i}@example.org" for i in range(25)), reverse=True)  # newest, then by address
    bounces, _ = await manager.list(a, filters(kind=HARD_BOUNCE, address_prefix="B0"), page_size=100)
    assert [r.address for r in bounces] == ["b09@example.com", "b08@example.com", "b07@example.com", "b06@example.com",
                                             "b05@example.com", "b04@example.com", "b03@example.com", "b02@example.com",
                                             "b01@example.com", "b00@example.com"]
    window, _ = await manager.list(a, filters(created_after=base + timedelta(minutes=8), created_before=utcnow()
                                              - timedelta(hours=1)), page_size=100)
    assert {r.address for r in window} == {f"b{i:02}@example.com" for i in range(30) if i % 10 == 9}
    _, token = await manager.list(a, filters(), page_size=1)
    with pytest.raises(InvalidArgument):
        await manager.list(a, filters(kind=COMPLAINT), page_token=token)

    assert (await manager.get(a, "SPAM@example.com")).kind == COMPLAINT
    with pytest.raises(NotFound):
        await manager.get(b, "spam@example.com")
    removed = await manager.batch_remove(a, ["spam@example.com", "SPAM@Example.com", "none@example.com"])
    assert [o.record is not None for o in removed] == [True, True, False]
    assert removed[2].error is not None and removed[2].error.code == "NOT_FOUND"
    with pytest.raises(NotFound):
        await manager.remove(a, "spam@example.com")
    record, created = await manager.add(b, "spam@example.com", "b's own")
    assert created and record.reason == "b's own"
