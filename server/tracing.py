"""A span per RPC, when tracing is on (core.observability.tracing; POSTWIRE_OTEL_ENDPOINT).

Right inside server.request_id, so the request id is known and the status is the one
the call really ends with (errors mapped, refusals of auth and rate limits included).
The span continues a W3C `traceparent` the caller sent as metadata (a gRPC client with
OpenTelemetry, or Envoy with tracing), else it starts a trace. It is named
`postwire.v1.EmailService/Send` and the like, kind SERVER, with the attributes

    rpc.system=grpc, rpc.service, rpc.method, rpc.grpc.status_code (int),
    postwire.request_id, and once known postwire.account_id, postwire.message_id

and status ERROR for the codes that mean the server failed (UNKNOWN, INTERNAL,
UNAVAILABLE, DEADLINE_EXCEEDED, UNIMPLEMENTED, DATA_LOSS), not for a caller's mistake.
A unary call's span is the current span while the servicer runs, so the delivery
message it publishes carries its traceparent (core.observability.context.message_options). Health
checks get no span: probes every few seconds would drown the traces worth reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from core.observability import context as log_context
from core.observability import tracing
from core.settings import Settings
from server.interceptors import (
    Behavior,
    Continuation,
    current_principal,
    never_raise,
    wrap,
)
from server.metrics import final_code, split_method
from server.request_id import QUIET_PREFIX

SERVER_ERRORS = frozenset({
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
})


def rpc_tracing(settings: Settings) -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptor when tracing is configured, else nothing (no cost)."""
    return [TracingInterceptor()] if settings.otel_endpoint else []


def _finish(span: Span, context: grpc.aio.ServicerContext, error: BaseException | None) -> None:
    code = final_code(context, error)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    principal = current_principal.get(None)  # set by the auth layer, in this task
    if principal is not None:
        span.set_attribute("postwire.account_id", principal.account_id)
    message_id = log_context.message_id.get()  # bound by the domain once an email is known
    if message_id:
        span.set_attribute("postwire.message_id", message_id)
    if code in SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, code.name))


class TracingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(QUIET_PREFIX):
            return handler
        service, method = split_method(details.method)
        name = f"{service}/{method}"
        parent = tracing.extract({k: v for k, v in details.invocation_metadata or () if isinstance(v, str)})

        def attributes() -> dict[str, str]:
            return {
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": method,
                "postwire.request_id": log_context.request_id.get() or "",  # set by server.request_id
            }

        def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with tracing.tracer().start_as_current_span(
                    name, context=parent, kind=SpanKind.SERVER, attributes=attributes(),
                    record_exception=False, set_status_on_exception=False,
                ) as span:
                    error: BaseException | None = None
                    try:
                        return await behavior(request, context)
                    except BaseException as exc:
                        error = exc
                        raise
                    finally:
                        never_raise("the RPC span", _finish, span, context, error)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                # Not made current: a generator may be closed from another context, where
                # detaching would fail; nothing a stream calls needs the span.
                span = tracing.tracer().start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes())
                error: BaseException | None = None
                try:
                    async for item in behavior(request, context):
                        yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    never_raise("the RPC span", _finish, span, context, error)
                    never_raise("ending the RPC span", span.end)

            return stream if streaming else unary

        return wrap(handler, details, around)
