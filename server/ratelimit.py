"""Rate limiting: per key and per account, a send budget and a read budget, and a cap
on concurrent event streams per key. Every answer carries x-ratelimit-* metadata."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from core.errors import ResourceExhausted
from core.keys.manager import Principal
from core.limits.interface import Decision, Quota, RateLimiter, StreamSlots
from server.errors import rate_limit_metadata
from server.interceptors import Behavior, Continuation, current_principal, wrap
from server.policy import MethodPolicy, policy_for

STREAM_SLOT_TTL = 30.0  # a live stream refreshes its slot every half of this
HEADERS_GRACE = 0.5  # seconds a stream may take to refuse its request before its headers go out
Metadata = list[tuple[str, str]]


@dataclass(frozen=True)
class Defaults:
    send_per_minute: int
    read_per_minute: int
    account_send_per_minute: int
    account_read_per_minute: int
    max_streams_per_key: int


_BUDGET_SETS_MAX = 10_000  # cached budget sets (one per key and budget kind in use)


def budgets(principal: Principal, policy: MethodPolicy, defaults: Defaults) -> tuple[tuple[str, Quota], ...]:
    if policy.budget == "send":
        key_limit = principal.send_per_minute or defaults.send_per_minute
        account_limit = principal.account_send_per_minute or defaults.account_send_per_minute
    else:
        key_limit = principal.read_per_minute or defaults.read_per_minute
        account_limit = principal.account_read_per_minute or defaults.account_read_per_minute
    return (
        (f"key:{principal.key_id}:{policy.budget}", Quota(key_limit)),
        (f"account:{principal.account_id}:{policy.budget}", Quota(account_limit)),
    )


async def _free(count: int) -> None:
    return None


# A request stream whose messages each count (SendStream) is not charged when it starts:
# its servicer charges each group of messages before storing it, through this.
stream_charge: ContextVar[Callable[[int], Awaitable[None]]] = ContextVar("stream_charge", default=_free)


def _charger(limiter: RateLimiter, budgets: tuple[tuple[str, Quota], ...]) -> Callable[[int], Awaitable[None]]:
    """Charge `count` messages to the budgets, waiting while they are spent: a stream
    slows to its rate limit instead of failing. A count above the smallest limit is
    charged in parts (a larger cost could never be allowed)."""
    most = min(quota.limit for _, quota in budgets)

    async def charge(count: int) -> None:
        while count > 0:
            part = min(count, most)
            decision = await limiter.check(budgets, part)
            if decision.allowed:
                count -= part
            else:
                await asyncio.sleep(max(decision.retry_after, 0.05))

    return charge


def _exhausted(decision: Decision, what: str) -> ResourceExhausted:
    return ResourceExhausted(
        f"rate limit exceeded: {what}; retry in {decision.retry_after:.1f}s",
        budget=decision.budget,
        limit=decision.limit,
        remaining=0,
        retry_after=decision.retry_after,
        reset_after=decision.reset_after,
    )


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, limiter: RateLimiter, slots: StreamSlots, defaults: Defaults) -> None:
        self.limiter = limiter
        self.slots = slots
        self.defaults = defaults
        # Built once per key (a Principal carries its limits, so a changed limit is a
        # new entry), not per request.
        self._budget_sets: dict[tuple[Principal, str], tuple[tuple[str, Quota], ...]] = {}

    def budgets_for(self, principal: Principal, policy: MethodPolicy) -> tuple[tuple[str, Quota], ...]:
        found = self._budget_sets.get((principal, policy.budget))
        if found is None:
            if len(self._budget_sets) >= _BUDGET_SETS_MAX:
                self._budget_sets.clear()
            found = self._budget_sets[(principal, policy.budget)] = budgets(principal, policy, self.defaults)
        return found

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        policy = policy_for(details.method)
        if handler is None or policy is None:
            return handler
        limiter, slots, defaults, budgets_for = self.limiter, self.slots, self.defaults, self.budgets_for

        async def admit(context: grpc.aio.ServicerContext, request: Any) -> tuple[Principal, Metadata]:
            principal = current_principal.get()
            budgets, cost = budgets_for(principal, policy), policy.cost(request)
            if cost > 1 and (too_small := [(name, q) for name, q in budgets if q.limit < cost]):
                name, quota = too_small[0]
                raise ResourceExhausted(  # waiting would never help: say what would
                    f"this call counts {cost} emails, more than the {policy.budget} budget of "
                    f"{name.split(':')[0]} allows per minute ({quota.limit}); send fewer per call or raise the limit",
                    budget=name, limit=quota.limit, remaining=0, retry_after=quota.period, reset_after=quota.period,
                )
            decision = await limiter.check(budgets, cost)
            if not decision.allowed:
                raise _exhausted(decision, f"{policy.budget} budget of {decision.budget.split(':')[0]}")
            return principal, rate_limit_metadata(decision.limit, decision.remaining, decision.reset_after)

        def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                _, headers = await admit(context, request)
                await context.send_initial_metadata(headers)
                return await behavior(request, context)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                if policy.streamed:
                    stream_charge.set(_charger(limiter, budgets_for(current_principal.get(), policy)))
                    async for item in behavior(request, context):
                        yield item
                    return
                principal, headers = await admit(context, request)
                name = f"streams:{principal.key_id}"
                limit = principal.max_streams or defaults.max_streams_per_key
                slot = secrets.token_hex(8)
                if not await slots.acquire(name, limit, slot, STREAM_SLOT_TTL):
                    raise ResourceExhausted(
                        f"at most {limit} concurrent event streams per API key",
                        budget=name, limit=limit, remaining=0, retry_after=STREAM_SLOT_TTL / 2,
                        reset_after=STREAM_SLOT_TTL,
                    )
                keeper = asyncio.create_task(_keep(slots, name, slot))
                try:
                    async for item in _headers_once_started(behavior(request, context), context, headers):
                        yield item
                finally:
                    keeper.cancel()
                    await slots.release(name, slot)

            return stream if streaming else unary

        return wrap(handler, details, around)


async def _headers_once_started(items: AsyncIterator[Any], context: grpc.aio.ServicerContext,
                                 headers: Metadata) -> AsyncIterator[Any]:
    """`items`, with the x-ratelimit-* headers sent along with the first item, or after
    HEADERS_GRACE seconds if none came by then. Sent at once, the headers would commit
    the response: a request the servicer refuses straight away (a bad cursor) would then
    end a started stream instead of being a trailers-only error, which Envoy turns into
    HTTP 200 with the error in the body rather than a 4xx."""
    iterator = aiter(items)
    first = asyncio.ensure_future(anext(iterator))
    try:
        done, _ = await asyncio.wait({first}, timeout=HEADERS_GRACE)
        if not done:  # a valid stream waiting for its first event: open it now
            await context.send_initial_metadata(headers)
        try:
            item = await first
        except StopAsyncIteration:
            return
    except BaseException:
        first.cancel()
        raise
    if done:
        await context.send_initial_metadata(headers)
    yield item
    async for item in iterator:
        yield item


async def _keep(slots: StreamSlots, name: str, slot: str) -> None:
    while True:
        await asyncio.sleep(STREAM_SLOT_TTL / 2)
        await slots.refresh(name, slot, STREAM_SLOT_TTL)
