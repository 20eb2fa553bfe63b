"""RPC metrics: calls by method and status code, latency, open streams.

The outermost interceptor but one (after server.request_id), so it sees the status every
call really ends with, errors mapped by the ErrorInterceptor and refusals of the auth
and rate limit layers included. Names follow go-grpc-prometheus, prefixed `postwire_`:

    postwire_grpc_server_handled_total{grpc_service, grpc_method, grpc_type, grpc_code}
    postwire_grpc_server_handling_seconds{grpc_service, grpc_method}   (unary calls)
    postwire_grpc_server_streams_open{grpc_service, grpc_method}
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram

from core.observability.metrics import metric
from server.interceptors import Behavior, Continuation, never_raise, wrap

HANDLED = metric(
    Counter,
    "postwire_grpc_server_handled_total",
    "RPCs completed, by method and gRPC status code.",
    ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
)
HANDLING = metric(
    Histogram,
    "postwire_grpc_server_handling_seconds",
    "Time to answer a unary RPC, from the request to the status.",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BULK_EMAILS = metric(
    Counter,
    "postwire_bulk_emails_total",
    "Emails of SendBatch and SendStream calls, by method and outcome (accepted, or refused alone).",
    ["grpc_method", "outcome"],
)


def count_bulk(method: str, outcomes: Sequence[object]) -> None:
    refused = sum(1 for outcome in outcomes if isinstance(outcome, Exception))
    if refused:
        BULK_EMAILS.labels(method, "refused").inc(refused)
    if len(outcomes) > refused:
        BULK_EMAILS.labels(method, "accepted").inc(len(outcomes) - refused)


STREAMS_OPEN = metric(
    Gauge,
    "postwire_grpc_server_streams_open",
    "Server-streaming RPCs (StreamEvents) open now.",
    ["grpc_service", "grpc_method"],
)


_KINDS = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}


def split_method(full: str) -> tuple[str, str]:
    """"/postwire.v1.EmailService/Send" -> ("postwire.v1.EmailService", "Send")."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def final_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status an RPC ended with: what it was aborted with, CANCELLED when the client
    went away, UNKNOWN for an exception nothing mapped, else OK."""
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is not None and not isinstance(error, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        service, method = split_method(details.method)
        kind = _KINDS[bool(handler.request_streaming), bool(handler.response_streaming)]

        def done(context: grpc.aio.ServicerContext, kind: str, error: BaseException | None) -> None:
            HANDLED.labels(service, method, kind, final_code(context, error).name).inc()

        def observe(seconds: float) -> None:
            HANDLING.labels(service, method).observe(seconds)

        def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                error: BaseException | None = None
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    if kind == "unary":  # not a stream that writes through the context
                        never_raise("the latency metric", observe, time.perf_counter() - started)
                    never_raise("the RPC metric", done, context, kind, error)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                gauge = STREAMS_OPEN.labels(service, method)
                gauge.inc()
                error: BaseException | None = None
                try:
                    async for item in behavior(request, context):
                        yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    never_raise("the open streams metric", gauge.dec)
                    never_raise("the RPC metric", done, context, kind, error)

            return stream if streaming else unary

        return wrap(handler, details, around)
