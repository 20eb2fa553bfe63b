"""ListEmails at the store level (core.emails.search) on PostgreSQL and SQLite: every
filter, pages newest first, the terms written at accept time (they outlive pruned
content), the template filter on the emails' own column, tenants, and the migration's
backfill of emails stored before it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails import search
from core.emails.content import Address, EmailContent, content_to_dict
from core.emails.model import Status
from core.emails.search import EmailSearch
from core.emails.store import NewEmail, Store
from core.errors import InvalidArgument
from core.storage import migrations
from core.storage.db import email_terms, emails, make_engine
from core.storage.migrate import upgrade
from core.times import utcnow
from tests.integration.conftest import new_account
from tests.integration.test_insert_rows import _sqlite
from tests.support.stack import fresh_database


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    with fresh_database() if request.param == "postgresql" else _sqlite(tmp_path) as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        await engine.dispose()


def _new(n: int, *, to: str = "", sender: str = "app@example.com", tags: tuple[str, ...] = (),
         metadata: dict[str, str] | None = None, bcc: str = "") -> NewEmail:
    content = EmailContent(
        from_address=Address(sender, "App"), to=(Address(to or f"user{n}@example.com"),),
        bcc=(Address(bcc),) if bcc else (), subject=f"hello {n}", text_body="body", tags=tags,
        metadata=metadata or {},
    )
    return NewEmail(f"msg_{n:04d}_{id(content) % 9973}", content_to_dict(content), [a.email for a in content.recipients],
                    Status.QUEUED, utcnow())


async def _accept(store: Store, account_id: int, items: list[NewEmail]) -> list[str]:
    results = await store.accept_many([(account_id, item) for item in items])
    return [r.message_id for r in results]  # type: ignore[union-attr]


async def _ids(searcher: EmailSearch, account_id: int, page_size: int = 50, **kwargs: object) -> list[str]:
    found, _ = await searcher.list(account_id, search.filters(**kwargs), page_size=page_size)  # type: ignore[arg-type]
    return [s.message_id for s in found]


async def test_each_filter_finds_exactly_its_emails_newest_first(engine: AsyncEngine) -> None:
    store, searcher = Store(engine), EmailSearch(engine)
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    plain = await _accept(store, a, [_new(1), _new(2)])
    tagged = await _accept(store, a, [_new(3, tags=("welcome", "x")), _new(4, tags=("welcome",))])
    meta = await _accept(store, a, [_new(5, metadata={"plan": "pro", "n": "5"})])
    to_ada = await _accept(store, a, [_new(6, to="Ada@Example.COM"), _new(7, bcc="ada@example.com")])
    other_sender = await _accept(store, a, [_new(8, sender="news@example.org", tags=("welcome",))])
    await _accept(store, b, [_new(9, to="ada@example.com", tags=("welcome",), metadata={"plan": "pro"})])

    assert await _ids(searcher, a) == (plain + tagged + meta + to_ada + other_sender)[::-1]  # newest first
    assert set(await _ids(searcher, a, tags=["welcome"])) == {*tagged, *other_sender}
    assert await _ids(searcher, a, tags=["welcome", "x"]) == [tagged[0]]
    assert await _ids(searcher, a, metadata=["plan=pro"]) == meta
    assert await _ids(searcher, a, metadata=["plan=basic"]) == []
    assert set(await _ids(searcher, a, recipient="ADA@example.com")) == set(to_ada)  # to and bcc, normalized
    assert await _ids(searcher, a, from_address="News@Example.ORG") == other_sender
    assert await _ids(searcher, a, from_address="app@example.com", tags=["welcome"]) == tagged[::-1]
    assert await _ids(searcher, a, statuses=[Status.QUEUED], recipient="ada@example.com", page_size=1) == [to_ada[1]]
    assert await _ids(searcher, a, statuses=[Status.SENT]) == []
    # Another account's emails never appear, whatever the filter.
    assert len(await _ids(searcher, b)) == 1
    assert set(await _ids(searcher, a, metadata=["plan=pro"])) == set(meta)


async def test_status_template_and_time_filters_read_the_emails_columns(engine: AsyncEngine) -> None:
    store, searcher = Store(engine), EmailSearch(engine)
    a = await new_account(engine, "a")
    ids = await _accept(store, a, [_new(1), _new(2), _new(3)])
    async with engine.begin() as conn:
        await conn.execute(update(emails).where(emails.c.public_id == ids[0]).values(status="bounced"))
        await conn.execute(update(emails).where(emails.c.public_id == ids[1])
                           .values(template_id="tpl_welcome", template_version=2, template_variant="b"))
    assert await _ids(searcher, a, statuses=[Status.BOUNCED]) == [ids[0]]
    assert set(await _ids(searcher, a, statuses=[Status.BOUNCED, Status.QUEUED])) == set(ids)
    [found], _ = await searcher.list(a, search.filters(template_id="tpl_welcome"))
    assert (found.message_id, found.template_version, found.template_variant) == (ids[1], 2, "b")
    now = utcnow()
    assert len(await _ids(searcher, a, created_after=now - timedelta(minutes=1))) == 3
    assert await _ids(searcher, a, created_before=now - timedelta(minutes=1)) == []


async def test_pages_cover_every_email_once_with_ties_on_created_at(engine: AsyncEngine) -> None:
    store, searcher = Store(engine), EmailSearch(engine)
    a = await new_account(engine, "a")
    stored = []
    for batch in range(3):  # a batch's emails share one created_at: ids break the ties
        stored += await _accept(store, a, [_new(batch * 10 + i, tags=("t",)) for i in range(7)])
    for kwargs in ({}, {"tags": ["t"]}):
        seen, token = [], ""
        while True:
            found, token = await searcher.list(a, search.filters(**kwargs), page_size=4, page_token=token)  # type: ignore[arg-type]
            seen += [s.message_id for s in found]
            if not token:
                break
        assert seen == stored[::-1]


async def test_tokens_are_bound_to_account_and_filters(engine: AsyncEngine) -> None:
    store, searcher = Store(engine), EmailSearch(engine)
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    await _accept(store, a, [_new(i, tags=("t",)) for i in range(3)])
    _, token = await searcher.list(a, search.filters(tags=["t"]), page_size=1)
    assert token
    with pytest.raises(InvalidArgument, match="other filters"):
        await searcher.list(a, search.filters(tags=["u"]), page_token=token)
    with pytest.raises(InvalidArgument, match="other filters"):
        await searcher.list(b, search.filters(tags=["t"]), page_token=token)
    with pytest.raises(InvalidArgument, match="not a page token"):
        await searcher.list(a, search.filters(tags=["t"]), page_token=token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))


async def test_emails_with_pruned_content_are_still_found(engine: AsyncEngine) -> None:
    store, searcher = Store(engine), EmailSearch(engine)
    a = await new_account(engine, "a")
    [pruned] = await _accept(store, a, [_new(1, to="ada@example.com", tags=("receipt",), metadata={"k": "v"})])
    async with engine.begin() as conn:  # the content gone entirely: the terms do not read it
        await conn.execute(update(emails).values(content={}, content_pruned_at=utcnow()))
    for kwargs in ({"recipient": "ada@example.com"}, {"from_address": "app@example.com"}, {"tags": ["receipt"]},
                   {"metadata": ["k=v"]}):
        [found], _ = await searcher.list(a, search.filters(**kwargs))  # type: ignore[arg-type]
        assert found.message_id == pruned and found.content_pruned_at is not None and found.to == ()


LATEST = sorted(p.name[:4] for p in (Path(migrations.__file__).parent / "versions").glob("0*.py"))[-1]


async def test_migration_backfills_terms_of_emails_stored_before_it(engine: AsyncEngine) -> None:
    store, searcher = Store(engine), EmailSearch(engine)
    a = await new_account(engine, "a")
    [old] = await _accept(store, a, [_new(1, to="ada@example.com", tags=("t",), metadata={"k": "v"})])
    async with engine.begin() as conn:
        await conn.execute(delete(email_terms))
        await conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
        await conn.execute(text("DROP TABLE email_terms"))
        await conn.execute(text("DROP INDEX ix_emails_account_id_status_created_at"))
        await conn.execute(text("DROP INDEX ix_emails_account_id_template_id_created_at"))
    url = str(engine.url.render_as_string(hide_password=False))
    upgrade(url, "0011")  # only the search migration: the later ones are in place
    async with engine.begin() as conn:
        head = (await conn.execute(text("SELECT max(version_num) FROM alembic_version"))).scalar()
        await conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": LATEST})
    assert head == "0011"
    assert await _ids(searcher, a, recipient="ada@example.com", tags=["t"], metadata=["k=v"]) == [old]
    async with engine.connect() as conn:
        assert len((await conn.execute(select(email_terms))).all()) == 4  # from, to, the tag, the metadata pair


async def test_bad_filters_name_their_fields() -> None:
    with pytest.raises(InvalidArgument) as caught:
        search.filters(recipient="not an address", metadata=["novalue", "=x"], tags=[""],
                       created_after=utcnow(), created_before=utcnow() - timedelta(days=1))
    fields = {v.field for v in caught.value.violations}
    assert fields == {"recipient", "metadata[0]", "metadata[1]", "tag[0]", "created_before"}


async def test_the_rarer_filter_drives_and_a_filter_matching_nothing_reads_no_page(engine: AsyncEngine) -> None:
    from core.emails.search_plan import plan as planned

    def plan(conn, a, wanted):  # noqa: ANN001, ANN202
        return planned(conn, a, wanted.terms(), search.column_filters(wanted))

    store, searcher = Store(engine), EmailSearch(engine)
    a = await new_account(engine, "a")
    ids = await _accept(store, a, [_new(n, tags=("common",), to="ada@example.com" if n < 2 else "") for n in range(6)])
    async with engine.begin() as conn:
        await conn.execute(update(emails).where(emails.c.public_id == ids[4]).values(status="bounced"))
    async with engine.connect() as conn:
        by_status = await plan(conn, a, search.filters(tags=["common"], statuses=[Status.BOUNCED]))
        by_recipient = await plan(conn, a, search.filters(tags=["common"], recipient="ada@example.com"))
        assert await plan(conn, a, search.filters(tags=["common", "none-such"])) is None
        assert await plan(conn, a, search.filters(tags=["common"], statuses=[Status.FAILED])) is None
    assert by_status is not None and not by_status.by_terms  # 1 bounced email against 6 tagged
    assert by_recipient is not None and by_recipient.by_terms and len(by_recipient.terms) == 2
    assert await _ids(searcher, a, tags=["common"], statuses=[Status.BOUNCED]) == [ids[4]]
    assert await _ids(searcher, a, tags=["common"], recipient="ada@example.com") == [ids[1], ids[0]]
    assert await _ids(searcher, a, tags=["common"], statuses=[Status.QUEUED], page_size=2) == [ids[5], ids[3]]


async def test_two_filters_past_the_count_cap_are_weighed_by_the_statistics(engine: AsyncEngine) -> None:
    from core.emails.search_plan import COUNT_CAP

    store, searcher = Store(engine), EmailSearch(engine)
    a = await new_account(engine, "a")
    for start in range(0, COUNT_CAP + 100, 500):
        await _accept(store, a, [_new(start + n, tags=("big",)) for n in range(500)])
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE") if conn.dialect.name == "postgresql" else text("SELECT 1"))
    found, token = await searcher.list(a, search.filters(tags=["big"], statuses=[Status.QUEUED]), page_size=10)
    assert len(found) == 10 and token
