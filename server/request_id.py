"""The request id of every RPC, and one log line per RPC.

Outermost interceptor. It takes the caller's `x-request-id` metadata when it looks like
an id (Envoy sends one with every request) or makes one, keeps it in
core.observability.context.request_id for every log line of the call (and, through the publisher's
message options, of the worker that delivers the email), and returns it as response
metadata `x-request-id`: in the headers of an answer, in the trailers of an error.

Unless `Settings.log_requests` is off, each finished RPC logs one INFO line on the
`postwire.rpc` logger: method, status code and duration (fields `rpc`, `code`,
`duration_ms` in JSON). Health checks are logged only when they fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from core.observability import context as log_context
from server.interceptors import Behavior, Continuation, current_principal, metadata_value, never_raise, wrap
from server.metrics import final_code, split_method

log = logging.getLogger("postwire.rpc")

HEADER = "x-request-id"
QUIET_PREFIX = "/grpc.health.v1.Health/"  # probes every few seconds: logged only when they fail
Metadata = Sequence[tuple[str, str | bytes]]


class _Context:
    """The servicer context as the inner layers see it: the request id rides along with
    whatever response metadata they send, or with the status they abort with."""

    def __init__(self, context: grpc.aio.ServicerContext, request_id: str) -> None:
        self._context = context
        self._pair = (HEADER, request_id)
        self.headers_sent = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        self.headers_sent = True
        await self._context.send_initial_metadata((*metadata, self._pair))

    async def send_request_id(self) -> None:
        """Send the headers now (with the request id) unless they are out already."""
        if not self.headers_sent:
            try:
                await self.send_initial_metadata(())
            except grpc.aio.UsageError:  # sent without us, say by a context.write elsewhere
                pass

    async def write(self, message: Any) -> None:
        """For handlers that stream with context.write (grpc_health's Watch)."""
        await self.send_request_id()
        await self._context.write(message)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()) -> None:
        await self._context.abort(code, details, (*trailing_metadata, self._pair))

    async def abort_with_status(self, status: grpc.Status) -> None:
        await self.abort(status.code, status.details, tuple(status.trailing_metadata or ()))


class RequestContextInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, log_requests: bool = True) -> None:
        self.log_requests = log_requests

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        incoming = metadata_value(details, HEADER)
        method = split_method(details.method)[1]
        log_requests = self.log_requests
        quiet = details.method.startswith(QUIET_PREFIX)

        def finish(context: grpc.aio.ServicerContext, started: float, error: BaseException | None) -> None:
            if not log_requests:
                return
            principal = current_principal.get(None)  # set by the auth layer, in this task
            if principal is not None:
                log_context.account_id.set(principal.account_id)
            code = final_code(context, error)
            if quiet and code is grpc.StatusCode.OK:
                return
            ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %.1f ms", method, code.name, ms,
                     extra={"rpc": details.method, "code": code.name, "duration_ms": round(ms, 2)})

        def around(behavior: Behavior, streaming: bool, details: grpc.HandlerCallDetails) -> Behavior:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                log_context.request_id.set(log_context.accept_request_id(incoming))
                inner = _Context(context, log_context.request_id.get() or "")
                error: BaseException | None = None
                try:
                    response = await behavior(request, inner)
                    await inner.send_request_id()
                    return response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    never_raise("the RPC log line", finish, context, started, error)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started = time.perf_counter()
                log_context.request_id.set(log_context.accept_request_id(incoming))
                inner = _Context(context, log_context.request_id.get() or "")
                error: BaseException | None = None
                try:
                    async for item in behavior(request, inner):
                        await inner.send_request_id()
                        yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    never_raise("the RPC log line", finish, context, started, error)

            return stream if streaming else unary

        return wrap(handler, details, around)
