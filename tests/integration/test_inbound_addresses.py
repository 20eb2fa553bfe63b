"""Which RCPT addresses the inbound listener takes: genuine tokens and the feedback
mailboxes at `bounces.<a sending domain>` (whatever that domain's state: one that fails
a re-check still gets the bounces of mail it sent) or the fallback return-path domain."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domains.schema import domains
from core.returns.inbound import InboundStore
from core.returns.tokens import BOUNCE, Claim, Tokens
from core.times import utcnow
from tests.integration.conftest import new_account


async def test_tokens_and_feedback_mailboxes_at_bounce_domains_of_any_state_are_accepted(engine: AsyncEngine) -> None:
    account = await new_account(engine, "acme")
    async with engine.begin() as conn:
        for number, (name, state) in enumerate([("good.example", "verified"), ("lapsed.example", "failed")]):
            await conn.execute(insert(domains).values(public_id=f"dom_{number}", account_id=account, name=name,
                                                      state=state, created_at=utcnow()))
    tokens = Tokens("x" * 48)
    store = InboundStore(engine, tokens, "bounces", "returns.example.net")
    token = tokens.address(Claim(BOUNCE, account, "msg_abc"), "bounces.good.example")

    assert await store.accepts(token)
    assert await store.accepts(token.replace("good", "lapsed"))
    assert await store.accepts(token.replace("bounces.good.example", "returns.example.net"))
    assert await store.accepts("fbl@bounces.good.example") and await store.accepts("Postmaster@BOUNCES.good.example")
    assert not await store.accepts(token.replace("good", "unknown"))  # nobody's domain
    assert not await store.accepts(token.replace("bounces.good", "mail.good"))  # not the bounce label
    assert not await store.accepts("b+forged@bounces.good.example")
    assert not await store.accepts("ada@bounces.good.example")
