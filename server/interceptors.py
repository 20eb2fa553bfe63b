"""Server interceptors, one concern each, applied in order: errors → auth → rate limit.

grpc.aio interceptors see only the method name, so each wraps the handler's
behaviour: that runs inside the RPC's own task, where the caller set in a
ContextVar by the auth layer is visible to the later layers and the servicer.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc._cython import cygrpc  # ExecuteBatchError: what a write to a gone call raises
from grpc.experimental import wrap_server_method_handler

from core.errors import PostwireError
from core.keys.manager import Principal
from server.decoding import Undecodable, safe_deserializer
from server.errors import internal_status, to_status

log = logging.getLogger(__name__)

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal")

Behavior = Callable[..., Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]
# around(behavior, streaming, details) -> wrapped behavior
Around = Callable[[Behavior, bool, grpc.HandlerCallDetails], Behavior]

_PASS_THROUGH = (grpc.aio.AbortError, grpc.aio.UsageError, asyncio.CancelledError)


def wrap(handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails, around: Around) -> grpc.RpcMethodHandler:
    def wrapped(behavior: Behavior) -> Behavior:
        # A streaming handler that writes with context.write and returns None (grpc_health's
        # Watch) is a coroutine, not an async generator: it is wrapped like a unary one.
        streaming = bool(handler.response_streaming) and inspect.isasyncgenfunction(behavior)
        return around(behavior, streaming, details)

    return wrap_server_method_handler(wrapped, handler)


def never_raise(what: str, step: Callable[..., object], *args: Any) -> None:
    """Run a bookkeeping step that follows a call (a metric, a span, a log line): a
    failure there is logged, never allowed to replace the call's own answer (a Send that
    committed must answer OK)."""
    try:
        step(*args)
    except Exception:  # noqa: BLE001 - bookkeeping must not change what the caller hears
        log.warning("%s failed after the call", what, exc_info=True)


def before(check: Callable[[Any, grpc.aio.ServicerContext, grpc.HandlerCallDetails], Awaitable[None]]) -> Around:
    """An `around` that runs `check` before the call, for unary and streaming calls alike."""

    def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await check(request, context, details)
            return await behavior(request, context)

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await check(request, context, details)
            async for item in behavior(request, context):
                yield item

        return stream if streaming else unary

    return around


async def _abort(context: grpc.aio.ServicerContext, method: str, error: Exception) -> None:
    if context.cancelled() or isinstance(error, cygrpc.ExecuteBatchError):
        # The client went away mid-call: gRPC failed to send the headers or a message (it
        # may not have marked the call cancelled yet). Nothing failed; no one is left to answer.
        raise asyncio.CancelledError(f"{method}: the client cancelled the call") from error
    if isinstance(error, PostwireError):
        await context.abort_with_status(to_status(error))
    log.exception("unhandled error in %s", method, exc_info=error)
    await context.abort_with_status(internal_status())


def _accept(request: Any) -> Any:
    """The request, or its InvalidArgument when it could not be decoded (server.decoding)."""
    if isinstance(request, Undecodable):
        raise request.error
    return request


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns PostwireError into its status; anything else into a logged INTERNAL.
    A request that cannot be decoded is INVALID_ARGUMENT (see server.decoding)."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        # A request stream's items arrive as Undecodable too; its servicer answers each (SendStream).
        handler = handler._replace(request_deserializer=safe_deserializer(handler.request_deserializer))

        def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await behavior(_accept(request), context)
                except _PASS_THROUGH:
                    raise
                except Exception as error:
                    await _abort(context, details.method, error)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in behavior(_accept(request), context):
                        yield item
                except _PASS_THROUGH:
                    raise
                except Exception as error:
                    await _abort(context, details.method, error)

            return stream if streaming else unary

        return wrap(handler, details, around)


def metadata_value(details: grpc.HandlerCallDetails, name: str) -> str:
    for key, value in details.invocation_metadata or ():
        if key == name and isinstance(value, str):
            return value
    return ""


def api_key_from(details: grpc.HandlerCallDetails) -> str:
    key = metadata_value(details, "x-api-key")
    if key:
        return key
    authorization = metadata_value(details, "authorization")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return ""
