"""Synchronous client over the generated stubs (postwire.v1): typed exceptions per gRPC
status (postwire_client.errors), automatic retries (postwire_client.retry), and event
streams that resume by cursor. `postwire_client.aio.AsyncClient` is the asyncio twin.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, Unpack, cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import email_pb2, email_service_pb2_grpc, event_pb2
from postwire.v1 import email_service_pb2 as pb
from postwire_client.attachments import attachment  # noqa: F401  (re-exported: postwire_client.sdk.attachment)
from postwire_client.domains import DomainMethods
from postwire_client.email_search import EmailSearchMethods
from postwire_client.errors import (  # noqa: F401  (the old names, re-exported)
    AlreadyExistsError,
    FailedPrecondition,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PostwireError,
    UnauthenticatedError,
    UnavailableError,
    from_rpc_error,
)
from postwire_client.retry import (
    CHANNEL_OPTIONS,
    DEFAULT_RETRY,
    RESUMABLE,
    RetryPolicy,
    new_idempotency_key,
    reconnect_delay,
    wait_or_raise,
)
from postwire_client.stats import StatsMethods
from postwire_client.suppressions import SuppressionMethods
from postwire_client.templates import TemplateFields, TemplateMethods
from postwire_client.times import timestamp

log = logging.getLogger("postwire_client")
T = TypeVar("T")

_translate = from_rpc_error  # kept for code written against the first SDK (tests/chaos uses it)


class SendFields(TemplateFields, total=False):
    """The keyword arguments of `send`: the fields of `SendRequest`, with friendlier types."""

    from_address: str
    to: Sequence[str]
    cc: Sequence[str]
    bcc: Sequence[str]
    reply_to: str
    subject: str
    text_body: str
    html_body: str
    headers: Mapping[str, str]
    tags: Sequence[str]
    metadata: Mapping[str, str]
    attachments: Sequence[email_pb2.Attachment]
    send_at: datetime | Timestamp | None
    expires_at: datetime | Timestamp | None
    idempotency_key: str | None
    unsubscribe: bool | None; track_opens: bool | None; track_clicks: bool | None  # noqa: E702 (None: the account's default)


def build_send_request(
    request: pb.SendRequest | None, fields: SendFields, *, auto_idempotency_key: bool
) -> pb.SendRequest:
    """A SendRequest from `request` or keyword fields, with an idempotency key made up
    when none is given (unless `auto_idempotency_key` is off)."""
    if request is not None and fields:
        raise TypeError("pass either a SendRequest or keyword fields, not both")
    if request is None:
        values: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        for name in ("send_at", "expires_at"):
            if name in values:
                values[name] = timestamp(values[name], "send_at/expires_at")
        for name in ("to", "cc", "bcc", "tags", "attachments"):
            if name in values:
                values[name] = list(values[name])
        request = pb.SendRequest(**values)
    else:
        copy = pb.SendRequest()
        copy.CopyFrom(request)
        request = copy
    if not request.idempotency_key and auto_idempotency_key:
        request.idempotency_key = new_idempotency_key()
    return request


def build_batch_request(requests: Sequence[pb.SendRequest], *, auto_idempotency_key: bool) -> pb.SendBatchRequest:
    """A SendBatchRequest of copies of `requests`, each keyed as build_send_request does."""
    return pb.SendBatchRequest(
        messages=[build_send_request(r, {}, auto_idempotency_key=auto_idempotency_key) for r in requests]
    )


def stream_request(
    after: str, message_ids: Sequence[str], types: Sequence[int], tags: Sequence[str], from_now: bool
) -> pb.StreamEventsRequest:
    return pb.StreamEventsRequest(
        after=after, message_ids=list(message_ids), types=cast(Any, list(types)), tags=list(tags), from_now=from_now
    )


def _drain(call: Any, items: queue.Queue[Any], idle_timeout: float | None) -> Iterator[event_pb2.Event]:
    try:
        while True:
            try:
                item = items.get(timeout=idle_timeout)
            except queue.Empty:
                return
            if item is None:
                return
            if isinstance(item, grpc.RpcError):
                if item.code() == grpc.StatusCode.CANCELLED:
                    return
                raise from_rpc_error(item)
            yield item
    finally:
        call.cancel()


class Client(DomainMethods, SuppressionMethods, TemplateMethods, StatsMethods, EmailSearchMethods):
    """A blocking client: `Client("127.0.0.1:50051", api_key)`; use it as a context manager
    (or call `close()`) to close the channel. Thread-safe.

    `timeout` bounds each attempt of a unary call (seconds; None for no deadline);
    `retry` says how UNAVAILABLE (and, for Send, DEADLINE_EXCEEDED) are retried;
    `auto_idempotency_key` makes `send` add a random idempotency key when the caller
    gives none, so its retries can never send twice (turn it off and an unkeyed Send is
    never retried). `credentials` gives a TLS channel; `options` are extra channel options.
    Sending domains and address checks: see `postwire_client.domains.DomainMethods`.
    """

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
            self.channel = grpc.insecure_channel(address, options=channel_options)
        else:
            self.channel = grpc.secure_channel(address, credentials, options=channel_options)
        self.stub = email_service_pb2_grpc.EmailServiceStub(self.channel)
        self._add_domain_stubs(self.channel)
        self._add_suppression_stubs(self.channel)
        self.metadata: tuple[tuple[str, str], ...] = (("x-api-key", api_key),)
        self.timeout = timeout
        self.retry = retry
        self.auto_idempotency_key = auto_idempotency_key

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _unary(self, name: str, rpc: Callable[..., T], request: Any, timeout: float | None, *,
               retry_deadline_exceeded: bool = False, retry: bool = True) -> T:
        """One unary call with retries; raises the typed exception of the last attempt."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return rpc(request, metadata=self.metadata, timeout=self.timeout if timeout is None else timeout)
            except grpc.RpcError as error:
                wait = wait_or_raise(self.retry, name, error, attempt=attempt, started=started, retry=retry,
                                     retry_deadline_exceeded=retry_deadline_exceeded)
            time.sleep(wait)
            attempt += 1

    def send(self, request: pb.SendRequest | None = None, /, *, timeout: float | None = None,
             **fields: Unpack[SendFields]) -> pb.SendResponse:
        """Accept one email for delivery: a SendRequest, or its fields as keywords
        (`send_at`/`expires_at` may be aware datetimes). Retried on UNAVAILABLE and
        DEADLINE_EXCEEDED with the same idempotency key, so it never sends twice."""
        message = build_send_request(request, fields, auto_idempotency_key=self.auto_idempotency_key)
        keyed = bool(message.idempotency_key)
        return self._unary("Send", self.stub.Send, message, timeout, retry_deadline_exceeded=keyed, retry=keyed)

    def send_batch(self, requests: Sequence[pb.SendRequest], *, timeout: float | None = None) -> list[pb.SendResult]:
        """Accept up to 1,000 emails in one call: one SendResult per request, in order,
        with `accepted` or `error` set. Retried like `send` when every request has an
        idempotency key (each gets one unless `auto_idempotency_key` is off)."""
        message = build_batch_request(requests, auto_idempotency_key=self.auto_idempotency_key)
        keyed = all(m.idempotency_key for m in message.messages)
        reply = self._unary("SendBatch", self.stub.SendBatch, message, timeout, retry_deadline_exceeded=keyed, retry=keyed)
        return list(reply.results)

    def get_status(self, message_id: str, *, timeout: float | None = None) -> pb.GetStatusResponse:
        """The email's status, per-recipient statuses and events."""
        return self._unary("GetStatus", self.stub.GetStatus, pb.GetStatusRequest(message_id=message_id), timeout)

    def cancel_scheduled(self, message_id: str, *, timeout: float | None = None) -> pb.CancelScheduledResponse:
        """Cancel a scheduled email. When a retry finds the email already CANCELED (the
        attempt that failed had gone through), that counts as success."""
        request = pb.CancelScheduledRequest(message_id=message_id)
        try:
            return self._unary("CancelScheduled", self.stub.CancelScheduled, request, timeout)
        except FailedPrecondition as exc:
            if exc.attempts > 1 and self.get_status(message_id).status == email_pb2.EMAIL_STATUS_CANCELED:
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
    ) -> Iterator[event_pb2.Event]:
        """Events after the cursor, then live ones (keep-alives are skipped). The call
        starts at once (so `from_now` means now); with `idle_timeout`, iteration stops
        once no event has arrived for that many seconds. A failure raises its typed
        exception; closing the iterator cancels the call."""
        call = self.stub.StreamEvents(stream_request(after, message_ids, types, tags, from_now), metadata=self.metadata)
        items: queue.Queue[Any] = queue.Queue(maxsize=1000)

        def pump() -> None:
            try:
                for response in call:
                    if response.HasField("event"):
                        items.put(response.event)
            except grpc.RpcError as error:
                items.put(error)
            items.put(None)

        threading.Thread(target=pump, daemon=True, name="postwire-stream").start()
        return _drain(call, items, idle_timeout)

    def follow_events(
        self,
        *,
        after: str = "",
        message_ids: Sequence[str] = (),
        types: Sequence[int] = (),
        tags: Sequence[str] = (),
        from_now: bool = False,
        max_backoff: float = 10.0,
    ) -> Iterator[event_pb2.Event]:
        """Follow events forever, reconnecting with backoff after a disconnect, a server
        restart or any status in `retry.RESUMABLE`, from the last cursor seen: no event
        is skipped or repeated. Other statuses (UNAUTHENTICATED, INVALID_ARGUMENT,
        OUT_OF_RANGE, ...) raise."""
        cursor = after
        failures = 0
        while True:
            error: PostwireError | None = None
            try:
                for event in self.stream_events(
                    after=cursor, message_ids=message_ids, types=types, tags=tags, from_now=from_now and not cursor
                ):
                    cursor = event.cursor
                    failures = 0
                    yield event
            except PostwireError as exc:
                if exc.code not in RESUMABLE:
                    raise
                error = exc
            wait = reconnect_delay(error, failures, max_backoff)
            log.info("event stream ended (%s); resuming after %r in %.2f s",
                     error.code.name if error else "closed", cursor, wait)
            failures += 1
            time.sleep(wait)
