"""The webhook store on a real (SQLite) database: fan-out by account, filter and state,
exactly once per (endpoint, event); disabling an endpoint that fails for too long,
with an account event that belongs to no email."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType
from core.storage.db import emails, events
from core.times import utcnow
from core.webhooks.delivery_store import (
    FAILED,
    RETRYING,
    AttemptOutcome,
    WebhookDeliveryStore,
)
from core.webhooks.fanout import FanOut
from core.webhooks.schema import webhook_deliveries, webhook_endpoints
from core.webhooks.signing import SecretBox
from core.webhooks.store import WebhookStore
from tests.integration.conftest import new_account
from workers.webhooks.dispatch import read_new_events


async def _event(engine: AsyncEngine, account_id: int, type_: EventType) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        email_id = (await conn.execute(insert(emails).values(
            public_id=f"msg_{now.timestamp()}", account_id=account_id, status="queued", content={}, attempts=0,
            last_error="", created_at=now, updated_at=now,
        ).returning(emails.c.id))).scalar_one()
        await conn.execute(insert(events).values(account_id=account_id, email_id=email_id, type=type_.value, occurred_at=now))


async def _fan_out(engine: AsyncEngine) -> int:
    return await FanOut(engine).fan_out(lambda position, limit: read_new_events(engine, position, limit))


async def test_fan_out_by_account_filter_and_state_once_per_event(engine: AsyncEngine) -> None:
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    store, box = WebhookStore(engine), SecretBox("k")
    every = await store.create(a, "whk_every", "http://x/1", "", frozenset(), box.seal("whsec_AA==", "whk_every"))
    sent_only = await store.create(a, "whk_sent", "http://x/2", "", frozenset({EventType.SENT}), box.seal("whsec_AA==", "whk_sent"))
    off = await store.create(a, "whk_off", "http://x/3", "", frozenset(), box.seal("whsec_AA==", "whk_off"))
    async with engine.begin() as conn:
        await conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.id == off.id).values(state="disabled"))
    await _event(engine, a, EventType.QUEUED)
    await _event(engine, a, EventType.SENT)
    await _event(engine, b, EventType.SENT)
    assert await _fan_out(engine) == 3
    assert await _fan_out(engine) == 0  # the position moved past them
    async with engine.connect() as conn:
        rows = (await conn.execute(select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.event_type))).all()
    assert sorted(rows) == sorted([(every.id, "email.queued"), (every.id, "email.sent"), (sent_only.id, "email.sent")])


async def test_an_endpoint_failing_for_too_long_is_disabled_with_an_account_event(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    endpoint = await WebhookStore(engine).create(a, "whk_x", "http://x/", "", frozenset(), SecretBox("k").seal("whsec_AA==", "whk_x"))
    delivery_id = await WebhookStore(engine).add_delivery(endpoint, "evt_test_1", "webhook.test", "{}", utcnow())
    store = WebhookDeliveryStore(engine)
    outcome = AttemptOutcome(RETRYING, 503, 12, "HTTP 503", utcnow() + timedelta(seconds=1),
                             disable_after=timedelta(hours=1))
    claimed = await store.claim(delivery_id, timedelta(seconds=30))
    assert claimed is not None and claimed.sealed_secrets and await store.claim(delivery_id, timedelta(seconds=30)) is None
    assert await store.finish(claimed, outcome) == "retrying"  # starts the failing run

    async with engine.begin() as conn:
        await conn.execute(update(webhook_endpoints).values(failing_since=utcnow() - timedelta(hours=2)))
        await conn.execute(update(webhook_deliveries).values(next_attempt_at=utcnow()))
    claimed = await store.claim(delivery_id, timedelta(seconds=30))
    assert claimed is not None and claimed.attempts == 2
    assert await store.finish(claimed, outcome) == "endpoint_disabled"
    async with engine.connect() as conn:
        state = (await conn.execute(select(webhook_endpoints.c.state, webhook_endpoints.c.disabled_reason))).one()
        delivery = (await conn.execute(select(webhook_deliveries.c.status))).scalar_one()
        event = (await conn.execute(select(events.c.email_id, events.c.type, events.c.detail))).one()
    assert state.state == "disabled" and "every attempt failed since" in state.disabled_reason
    assert delivery == FAILED
    assert event.email_id is None and event.type == "webhook_disabled" and "whk_x" in event.detail


async def test_events_of_accounts_without_endpoints_are_passed_over_without_losing_the_others(
    engine: AsyncEngine,
) -> None:
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    every = await WebhookStore(engine).create(a, "whk_all", "http://x/1", "", frozenset(),
                                              SecretBox("k").seal("whsec_AA==", "whk_all"))
    for _ in range(3):
        await _event(engine, b, EventType.SENT)
    await _event(engine, a, EventType.SENT)
    fan_out = FanOut(engine)
    counts = [await fan_out.fan_out(lambda position, limit: read_new_events(engine, position, limit), 2) for _ in range(3)]
    assert counts == [2, 2, 0]  # b's first two, then b's third and a's, then nothing
    async with engine.connect() as conn:
        rows = (await conn.execute(select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.account_id))).all()
    assert rows == [(every.id, a)]
