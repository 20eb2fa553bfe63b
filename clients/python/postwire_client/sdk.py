"""Synchronous client: typed exceptions per gRPC status, like google.api_core.exceptions."""

from __future__ import annotations

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
        idle_timeout: float | None = None,
    ) -> Iterator[event_pb2.Event]:
        """Events after the cursor, then live ones. With `idle_timeout`, stops once no
        event has arrived for that many seconds (catch-up reads)."""
        request = pb.StreamEventsRequest(after=after, message_ids=list(message_ids), types=list(types))
        call = self.stub.StreamEvents(request, metadata=self.metadata)
        try:
            if idle_timeout is None:
                for response in call:
                    yield response.event
                return
            import queue
            import threading

            items: queue.Queue[Any] = queue.Queue()

            def pump() -> None:
                try:
                    for response in call:
                        items.put(response.event)
                except grpc.RpcError as error:
                    items.put(error)
                items.put(None)

            threading.Thread(target=pump, daemon=True).start()
            while True:
                try:
                    item = items.get(timeout=idle_timeout)
                except queue.Empty:
                    return
                if item is None:
                    return
                if isinstance(item, grpc.RpcError):
                    raise item
                yield item
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise _translate(error) from None
        finally:
            call.cancel()
