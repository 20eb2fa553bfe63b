"""Server interceptors, one concern each, applied in order: errors → auth.

grpc.aio interceptors see only the method name, so each wraps the handler's
behaviour: that runs inside the RPC's own task, where the caller's account set in a
ContextVar is visible to the servicer.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc.experimental import wrap_server_method_handler

from core.errors import PostwireError, Unauthenticated
from server.errors import internal_status, to_status

log = logging.getLogger(__name__)

current_account: contextvars.ContextVar[int] = contextvars.ContextVar("current_account")

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Behavior = Callable[..., Any]


def _wrap(handler: grpc.RpcMethodHandler, around: Callable[[Behavior, bool], Behavior]) -> grpc.RpcMethodHandler:
    streaming = bool(handler.response_streaming)
    return wrap_server_method_handler(lambda behavior: around(behavior, streaming), handler)


_PASS_THROUGH = (grpc.aio.AbortError, grpc.aio.UsageError, asyncio.CancelledError)


async def _abort(context: grpc.aio.ServicerContext, method: str, error: Exception) -> None:
    if isinstance(error, PostwireError):
        await context.abort_with_status(to_status(error))
    log.exception("unhandled error in %s", method, exc_info=error)
    await context.abort_with_status(internal_status())


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns PostwireError into its status; anything else into a logged INTERNAL."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method

        def around(behavior: Behavior, streaming: bool) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await behavior(request, context)
                except _PASS_THROUGH:
                    raise
                except Exception as error:
                    await _abort(context, method, error)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in behavior(request, context):
                        yield item
                except _PASS_THROUGH:
                    raise
                except Exception as error:
                    await _abort(context, method, error)

            return stream if streaming else unary

        return _wrap(handler, around)


def api_key_from(metadata: tuple[tuple[str, Any], ...] | None) -> str:
    for key, value in metadata or ():
        if key == "x-api-key" and isinstance(value, str):
            return value
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return ""


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Resolves the API key to an account and puts it in `current_account`."""

    def __init__(self, authenticate: Callable[[str], Awaitable[int]]) -> None:
        self.authenticate = authenticate

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        key = api_key_from(details.invocation_metadata)
        authenticate = self.authenticate

        def around(behavior: Behavior, streaming: bool) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                current_account.set(await _account(authenticate, key))
                return await behavior(request, context)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                current_account.set(await _account(authenticate, key))
                async for item in behavior(request, context):
                    yield item

            return stream if streaming else unary

        return _wrap(handler, around)


async def _account(authenticate: Callable[[str], Awaitable[int]], key: str) -> int:
    if not key:
        raise Unauthenticated()
    return await authenticate(key)
