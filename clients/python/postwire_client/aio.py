"""asyncio client (grpc.aio) with the surface of the sync `Client`: the same typed
exceptions, retries, idempotency keys and resuming event streams.

    async with AsyncClient("127.0.0.1:50051", api_key) as client:
        reply = await client.send(from_address="a@example.com", to=["b@example.com"],
                                  subject="hi", text_body="hello")
        async for event in client.follow_events(message_ids=[reply.message_id]):
            ...

Create it inside a running event loop (grpc.aio binds the channel to that loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar, Unpack

import grpc
import grpc.aio

from postwire.v1 import email_pb2, email_service_pb2_grpc, event_pb2
from postwire.v1 import email_service_pb2 as pb
from postwire_client.domains import AsyncDomainMethods
from postwire_client.email_search import AsyncEmailSearchMethods
from postwire_client.errors import FailedPrecondition, PostwireError, from_rpc_error
from postwire_client.retry import (
    CHANNEL_OPTIONS,
    DEFAULT_RETRY,
    RESUMABLE,
    RetryPolicy,
    reconnect_delay,
    wait_or_raise,
)
from postwire_client.sdk import SendFields, build_batch_request, build_send_request, stream_request
from postwire_client.send_stream import send_stream
from postwire_client.stats import AsyncStatsMethods
from postwire_client.suppressions import AsyncSuppressionMethods
from postwire_client.templates import AsyncTemplateMethods

log = logging.getLogger("postwire_client")
T = TypeVar("T")


class EventStream:
    """The events of one StreamEvents call, as an async iterator (keep-alives skipped).
    The call starts when the stream is created. Iteration ends when the server ends
    the stream, on `cancel()`, or after `idle_timeout` seconds without an event; a
    failure raises its typed exception. Use `async with` to cancel it on exit."""

    def __init__(self, call: grpc.aio.UnaryStreamCall[pb.StreamEventsRequest, pb.StreamEventsResponse],
                 idle_timeout: float | None) -> None:
        self._call = call
        self._idle_timeout = idle_timeout

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> event_pb2.Event:
        while True:
            try:
                if self._idle_timeout is None:
                    response = await self._call.read()
                else:
                    response = await asyncio.wait_for(self._call.read(), self._idle_timeout)
            except TimeoutError:
                self.cancel()
                raise StopAsyncIteration from None
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.CANCELLED:
                    raise StopAsyncIteration from None
                raise from_rpc_error(error) from None
            except asyncio.CancelledError:
                self.cancel()
                raise
            if response is grpc.aio.EOF:
                raise StopAsyncIteration
            if response.HasField("event"):
                return response.event

    def cancel(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.cancel()


class AsyncClient(AsyncDomainMethods, AsyncSuppressionMethods, AsyncTemplateMethods, AsyncStatsMethods,
                  AsyncEmailSearchMethods):
    """`AsyncClient("127.0.0.1:50051", api_key)`; `async with` (or `await close()`)
    closes the channel. Options as for the sync `Client`; the domain and address calls
    are those of `postwire_client.domains.AsyncDomainMethods`."""

    def __init__(
        self,
        address: str,
        api_key: str,
        *,
        timeout: float | None = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        auto_idempotency_key: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        channel_options = [*CHANNEL_OPTIONS, *options]
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(address, options=channel_options)
        else:
            self.channel = grpc.aio.secure_channel(address, credentials, options=channel_options)
        self.stub = email_service_pb2_grpc.EmailServiceStub(self.channel)
        self._add_domain_stubs(self.channel)
        self._add_suppression_stubs(self.channel)
        self.metadata: tuple[tuple[str, str], ...] = (("x-api-key", api_key),)
        self.timeout = timeout
        self.retry = retry
        self.auto_idempotency_key = auto_idempotency_key

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def _unary(self, name: str, rpc: Callable[..., Awaitable[T]], request: Any, timeout: float | None, *,
                     retry_deadline_exceeded: bool = False, retry: bool = True) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await rpc(request, metadata=self.metadata, timeout=self.timeout if timeout is None else timeout)
            except grpc.aio.AioRpcError as error:
                wait = wait_or_raise(self.retry, name, error, attempt=attempt, started=started, retry=retry,
                                     retry_deadline_exceeded=retry_deadline_exceeded)
            await asyncio.sleep(wait)
            attempt += 1

    async def send(self, request: pb.SendRequest | None = None, /, *, timeout: float | None = None,
                   **fields: Unpack[SendFields]) -> pb.SendResponse:
        """As `Client.send`: retried with the same idempotency key, never sent twice."""
        message = build_send_request(request, fields, auto_idempotency_key=self.auto_idempotency_key)
        keyed = bool(message.idempotency_key)
        return await self._unary("Send", self.stub.Send, message, timeout, retry_deadline_exceeded=keyed, retry=keyed)

    async def send_batch(self, requests: Sequence[pb.SendRequest], *, timeout: float | None = None) -> list[pb.SendResult]:
        """As `Client.send_batch`."""
        message = build_batch_request(requests, auto_idempotency_key=self.auto_idempotency_key)
        keyed = all(m.idempotency_key for m in message.messages)
        reply = await self._unary("SendBatch", self.stub.SendBatch, message, timeout, retry_deadline_exceeded=keyed, retry=keyed)
        return list(reply.results)

    def send_stream(self, requests: AsyncIterable[pb.SendRequest] | Iterable[pb.SendRequest]
                    ) -> AsyncIterator[pb.SendStreamAck]:
        """Send many emails over one SendStream call: an ack per request as soon as it is
        stored (`sequence` is the request's position in `requests`, from 0; acks may come
        out of order), with `accepted` or `error`. What is ready goes out packed (up to
        500 emails a request), and `requests` is read only as fast as the server takes
        it. After UNAVAILABLE it reconnects and resends what was not acknowledged, with
        the same idempotency keys, so nothing is sent twice (postwire_client.send_stream)."""
        return send_stream(self, requests)

    async def get_status(self, message_id: str, *, timeout: float | None = None) -> pb.GetStatusResponse:
        return await self._unary("GetStatus", self.stub.GetStatus, pb.GetStatusRequest(message_id=message_id), timeout)

    async def cancel_scheduled(self, message_id: str, *, timeout: float | None = None) -> pb.CancelScheduledResponse:
        """As `Client.cancel_scheduled`."""
        request = pb.CancelScheduledRequest(message_id=message_id)
        try:
            return await self._unary("CancelScheduled", self.stub.CancelScheduled, request, timeout)
        except FailedPrecondition as exc:
            if exc.attempts > 1 and (await self.get_status(message_id)).status == email_pb2.EMAIL_STATUS_CANCELED:
                return pb.CancelScheduledResponse(message_id=message_id, status=email_pb2.EMAIL_STATUS_CANCELED)
            raise

    def stream_events(
        self,
        *,
        after: str = "",
        message_ids: Sequence[str] = (),
        types: Sequence[int] = (),
        tags: Sequence[str] = (),
        from_now: bool = False,
        idle_timeout: float | None = None,
    ) -> EventStream:
        """Events after the cursor, then live ones, as an `EventStream` (see there)."""
        call = self.stub.StreamEvents(stream_request(after, message_ids, types, tags, from_now), metadata=self.metadata)
        return EventStream(call, idle_timeout)

    async def follow_events(
        self,
        *,
        after: str = "",
        message_ids: Sequence[str] = (),
        types: Sequence[int] = (),
        tags: Sequence[str] = (),
        from_now: bool = False,
        max_backoff: float = 10.0,
    ) -> AsyncIterator[event_pb2.Event]:
        """Follow events forever, resuming from the last cursor after disconnects and
        RESUMABLE statuses (as `Client.follow_events`). Close it with
        `contextlib.aclosing` or by breaking out and letting it go."""
        cursor = after
        failures = 0
        while True:
            error: PostwireError | None = None
            stream = self.stream_events(
                after=cursor, message_ids=message_ids, types=types, tags=tags, from_now=from_now and not cursor
            )
            try:
                async for event in stream:
                    cursor = event.cursor
                    failures = 0
                    yield event
            except PostwireError as exc:
                if exc.code not in RESUMABLE:
                    raise
                error = exc
            finally:
                stream.cancel()
            wait = reconnect_delay(error, failures, max_backoff)
            log.info("event stream ended (%s); resuming after %r in %.2f s",
                     error.code.name if error else "closed", cursor, wait)
            failures += 1
            await asyncio.sleep(wait)
