"""Inbound reports in storage: which addresses the inbound listener accepts, keeping a
report before the listener answers 250, and handing it to the parse actor.

Reports go to the workers on the webhooks queue (`<queue_prefix>.webhooks`), actor
`parse_inbound_report`, so the workers consume no extra queue. Publishing is best
effort: the scheduler republishes a report never published (after
POSTWIRE_PUBLISH_GRACE_SECONDS) and one still `received` long after it was published
(POSTWIRE_REPUBLISH_AFTER_SECONDS), up to MAX_ATTEMPTS parses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.delivery.queue import Publisher, webhook_queue
from core.domains.schema import domains
from core.returns.schema import inbound_reports
from core.returns.tokens import Tokens
from core.settings import Settings
from core.times import aware, utcnow

INBOUND_ACTOR = "parse_inbound_report"
RECEIVED, IGNORED, UNPARSEABLE = "received", "ignored", "unparseable"
FEEDBACK_LOCALS = frozenset({"fbl", "abuse", "postmaster"})
MAX_ATTEMPTS = 5
_BATCH = 100


@dataclass(frozen=True)
class Report:
    id: int
    rcpt_to: str
    raw: bytes
    state: str
    attempts: int


class ReportPublisher(Publisher):
    """Publishes inbound report ids to the webhooks queue."""

    actor = INBOUND_ACTOR

    def queue_name(self, settings: Settings) -> str:
        return webhook_queue(settings)


class InboundStore:
    def __init__(self, engine: AsyncEngine, tokens: Tokens, bounce_label: str, fallback_domain: str) -> None:
        self.engine = engine
        self.tokens = tokens
        self.bounce_label = bounce_label.lower().strip(".")
        self.fallback_domain = fallback_domain.lower().strip(".")

    @classmethod
    def from_settings(cls, engine: AsyncEngine, settings: Settings) -> InboundStore:
        return cls(engine, Tokens(settings.secret_key.get_secret_value()), settings.bounce_subdomain,
                   settings.return_path_domain)

    async def is_bounce_domain(self, domain: str) -> bool:
        """`<bounce label>.<a sending domain of any account>`, or the fallback. Any state:
        a domain that fails its re-check keeps receiving the bounces of mail it sent."""
        domain = domain.lower().rstrip(".")
        if self.fallback_domain and domain == self.fallback_domain:
            return True
        label, dot, parent = domain.partition(".")
        if not dot or label != self.bounce_label or not parent:
            return False
        async with self.engine.connect() as conn:
            query = select(domains.c.id).where(domains.c.name == parent).limit(1)
            return (await conn.execute(query)).first() is not None

    async def accepts(self, address: str) -> bool:
        """A genuine `b+`/`u+` token address, or fbl@/abuse@/postmaster@, at a bounce domain."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or not local or not domain or len(address) > 320:
            return False
        if local.lower() not in FEEDBACK_LOCALS and self.tokens.read_address(address) is None:
            return False
        return await self.is_bounce_domain(domain)

    async def store(self, peer: str, mail_from: str, rcpt_tos: Sequence[str], raw: bytes) -> list[int]:
        """One stored report per accepted recipient; committed when this returns."""
        now = utcnow()
        async with self.engine.begin() as conn:
            ids = []
            for rcpt in rcpt_tos:
                row = await conn.execute(
                    insert(inbound_reports)
                    .values(received_at=now, peer=peer[:64], mail_from=mail_from[:1000], rcpt_to=rcpt[:1000], raw=raw)
                    .returning(inbound_reports.c.id)
                )
                ids.append(int(row.scalar_one()))
        return ids

    async def mark_published(self, report_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(inbound_reports).where(inbound_reports.c.id == report_id).values(published_at=utcnow()))

    async def due(self, grace: timedelta, retry_after: timedelta) -> list[int]:
        """Reports to publish again (marked published now): never published and older than
        `grace`, or published over `retry_after` ago and still not parsed."""
        now = utcnow()
        async with self.engine.begin() as conn:
            query = select(inbound_reports.c.id, inbound_reports.c.attempts).where(
                inbound_reports.c.state == RECEIVED,
                or_(
                    and_(inbound_reports.c.published_at.is_(None), inbound_reports.c.received_at < now - grace),
                    inbound_reports.c.published_at < now - retry_after,
                ),
            ).order_by(inbound_reports.c.id).limit(_BATCH)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await conn.execute(query)).all()
            spent = [r.id for r in rows if r.attempts >= MAX_ATTEMPTS]
            due = [r.id for r in rows if r.attempts < MAX_ATTEMPTS]
            if spent:
                await conn.execute(update(inbound_reports).where(inbound_reports.c.id.in_(spent)).values(
                    state=UNPARSEABLE, detail=f"gave up after {MAX_ATTEMPTS} attempts", processed_at=now))
            if due:
                await conn.execute(update(inbound_reports).where(inbound_reports.c.id.in_(due)).values(published_at=now))
        return due

    async def begin(self, report_id: int) -> Report | None:
        """The report, its attempts counted; None when it is gone or already parsed."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(inbound_reports).where(inbound_reports.c.id == report_id))).first()
            if row is None or row.state != RECEIVED:
                return None
            await conn.execute(update(inbound_reports).where(inbound_reports.c.id == report_id).values(
                attempts=inbound_reports.c.attempts + 1))
        return Report(row.id, row.rcpt_to, bytes(row.raw), row.state, row.attempts + 1)

    async def finish(self, report_id: int, state: str, detail: str, account_id: int | None = None,
                     message_id: str = "") -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(inbound_reports)
                .where(inbound_reports.c.id == report_id, inbound_reports.c.state == RECEIVED)
                .values(state=state, detail=detail[:2000], account_id=account_id, message_id=message_id[:40],
                        processed_at=utcnow())
            )

    async def get(self, report_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(inbound_reports).where(inbound_reports.c.id == report_id))).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["received_at"] = aware(values["received_at"])
        return values


async def publish_due(store: InboundStore, publish: Callable[[int], Awaitable[None]], grace: timedelta,
                      retry_after: timedelta) -> int:
    """The scheduler's step: publish what is due; returns how many."""
    ids = await store.due(grace, retry_after)
    for report_id in ids:
        await publish(report_id)
    return len(ids)
