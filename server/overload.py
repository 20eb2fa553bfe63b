"""Load shedding: a cap on the unary calls a server process works on at once.

Past its capacity a server would otherwise take every call it is offered and work on
all of them at once, so each one slows down until callers' deadlines (or transports)
give up on them: seconds of latency for everyone, then failures. With the cap, calls
beyond it are answered UNAVAILABLE straight away, before authentication or any
database work, and clients back off and retry (with their idempotency key) while the
calls in progress keep their latency. Streams are long-lived and are capped per key
elsewhere; health checks always pass.
"""

from __future__ import annotations

from typing import Any

import grpc

from core.errors import Unavailable
from server.interceptors import Behavior, Continuation, wrap

EXEMPT_PREFIX = "/grpc.health.v1.Health/"


class OverloadInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(EXEMPT_PREFIX):
            return handler

        def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
            if streaming:
                return behavior

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if self.in_progress >= self.limit:
                    raise Unavailable(
                        f"server busy: {self.in_progress} calls in progress; retry shortly "
                        "(a Send with the same idempotency_key)"
                    )
                self.in_progress += 1
                try:
                    return await behavior(request, context)
                finally:
                    self.in_progress -= 1

            return unary

        return wrap(handler, details, around)
