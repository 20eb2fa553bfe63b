"""Authentication and scopes: the API key becomes a Principal in `current_principal`.

Failed authentications are limited per client address: past the budget, the answer
is RESOURCE_EXHAUSTED instead of UNAUTHENTICATED, and that address is not looked
up again in this process until the budget allows.

The anonymous methods (server.policy.ANONYMOUS_METHODS: the one-click unsubscribe
link) take no key; each client address may call them `anonymous_per_minute` times.
"""

from __future__ import annotations

from typing import Any

import grpc

from core.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from core.keys.manager import KeyManager
from core.limits.interface import Quota, RateLimiter
from server.auth_failures import FailedLogins
from server.interceptors import (
    Continuation,
    api_key_from,
    before,
    current_principal,
    metadata_value,
    wrap,
)
from server.policy import ANONYMOUS_METHODS, policy_for

ANONYMOUS_PER_MINUTE = 600


def client_address(context: grpc.aio.ServicerContext, details: grpc.HandlerCallDetails, trusted: frozenset[str]) -> str:
    """The peer's IP; behind a trusted proxy, the last address it added to x-forwarded-for."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    address = rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else peer
    if address in trusted:
        forwarded = [a.strip() for a in metadata_value(details, "x-forwarded-for").split(",") if a.strip()]
        if forwarded:
            return forwarded[-1]
    return address


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self, keys: KeyManager, limiter: RateLimiter, failures_per_minute: int, trusted_proxies: frozenset[str],
        anonymous_per_minute: int = ANONYMOUS_PER_MINUTE,
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.failures = FailedLogins(limiter, failures_per_minute)
        self.anonymous = Quota(anonymous_per_minute, 60.0) if anonymous_per_minute else None
        self.trusted = trusted_proxies

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is not None and details.method in ANONYMOUS_METHODS:
            return self._anonymous(handler, details)
        policy = policy_for(details.method)
        if handler is None or policy is None:
            return handler

        async def check(request: Any, context: grpc.aio.ServicerContext, details: grpc.HandlerCallDetails) -> None:
            address = client_address(context, details, self.trusted)
            blocked = self.failures.blocked_for(address)
            if blocked > 0:
                raise self._exhausted(blocked)
            try:
                principal = await self.keys.authenticate(api_key_from(details))
            except Unauthenticated:
                blocked = await self.failures.failed(address)
                if blocked > 0:
                    raise self._exhausted(blocked) from None
                raise
            if policy.scope not in principal.scopes:
                raise PermissionDenied(f"this API key lacks the {policy.scope!r} scope")
            current_principal.set(principal)

        return wrap(handler, details, before(check))

    def _anonymous(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        quota = self.anonymous
        if quota is None:  # POSTWIRE_RATE_LIMITS=false
            return handler

        async def check(request: Any, context: grpc.aio.ServicerContext, details: grpc.HandlerCallDetails) -> None:
            address = client_address(context, details, self.trusted)
            decision = await self.limiter.check([(f"anon:{address}", quota)])
            if not decision.allowed:
                raise ResourceExhausted(
                    f"rate limit exceeded: calls without an API key from this address; retry in {decision.retry_after:.1f}s",
                    budget="calls without an API key per client address",
                    limit=quota.limit,
                    remaining=0,
                    retry_after=decision.retry_after,
                    reset_after=decision.reset_after,
                )

        return wrap(handler, details, before(check))

    def _exhausted(self, retry_after: float) -> ResourceExhausted:
        return ResourceExhausted(
            "too many failed authentications from this address",
            budget="failed authentications per client address",
            limit=self.failures.quota.limit,
            remaining=0,
            retry_after=retry_after,
            reset_after=self.failures.quota.period,
        )
