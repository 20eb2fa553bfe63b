"""Synchronous client: typed exceptions per gRPC status, like google.api_core.exceptions."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc, event_pb2


class PostwireError(Exception):
    """An RPC failed; `code` is the gRPC status code, `violations` any field errors."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, violations: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations = list(violations)


class InvalidArgumentError(PostwireError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class UnauthenticatedError(PostwireError):
    code = grpc.StatusCode.UNAUTHENTICATED


class NotFoundError(PostwireError):
    code = grpc.StatusCode.NOT_FOUND


class UnavailableError(PostwireError):
    code = grpc.StatusCode.UNAVAILABLE


class AlreadyExistsError(PostwireError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(PostwireError):
    code = grpc.StatusCode.FAILED_PRECONDITION


# Codes after which following a stream reconnects and resumes.
RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
                       grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED})

_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        NotFoundError,
        UnavailableError,
        AlreadyExistsError,
        FailedPreconditionError,
    )
}


def _translate(error: grpc.RpcError) -> PostwireError:
    violations: list[tuple[str, str]] = []
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [(v.field, v.description) for v in bad.field_violations]
    cls = _BY_CODE.get(error.code(), PostwireError)
    exc = cls(error.details() or error.code().name, violations)
    if cls is PostwireError:
        exc.code = error.code()
    return exc


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
                raise _translate(item)
            yield item
    finally:
        call.cancel()


class Client:
    """`Client("127.0.0.1:50051", api_key)`; use as a context manager to close the channel."""

    def __init__(self, address: str, api_key: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = email_service_pb2_grpc.EmailServiceStub(self.channel)
        self.metadata = (("x-api-key", api_key),)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def send(self, **fields: Any) -> pb.SendResponse:
        """Send one email; keyword arguments are SendRequest fields."""
        try:
            return self.stub.Send(pb.SendRequest(**fields), metadata=self.metadata)
        except grpc.RpcError as error:
            raise _translate(error) from None

    def get_status(self, message_id: str) -> pb.GetStatusResponse:
        try:
            return self.stub.GetStatus(pb.GetStatusRequest(message_id=message_id), metadata=self.metadata)
        except grpc.RpcError as error:
            raise _translate(error) from None

    def cancel_scheduled(self, message_id: str) -> pb.CancelScheduledResponse:
        try:
            return self.stub.CancelScheduled(pb.CancelScheduledRequest(message_id=message_id), metadata=self.metadata)
        except grpc.RpcError as error:
            raise _translate(error) from None

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
        once no event has arrived for that many seconds."""
        request = pb.StreamEventsRequest(
            after=after, message_ids=list(message_ids), types=list(types), tags=list(tags), from_now=from_now
        )
        call = self.stub.StreamEvents(request, metadata=self.metadata)
        items: queue.Queue[Any] = queue.Queue(maxsize=1000)

        def pump() -> None:
            try:
                for response in call:
                    if response.HasField("event"):
                        items.put(response.event)
            except grpc.RpcError as error:
                items.put(error)
            items.put(None)

        threading.Thread(target=pump, daemon=True).start()
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
        """Follow events forever, reconnecting after a disconnect or a server restart
        from the last cursor seen: no event is skipped or repeated."""
        cursor = after
        backoff = 0.2
        while True:
            try:
                for event in self.stream_events(
                    after=cursor, message_ids=message_ids, types=types, tags=tags, from_now=from_now and not cursor
                ):
                    cursor = event.cursor
                    backoff = 0.2
                    yield event
            except (UnavailableError, PostwireError) as error:
                if error.code not in RESUMABLE:
                    raise
            time.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
