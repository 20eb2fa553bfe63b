"""A client that rides out outages: the SDK's Client, whose calls retry UNAVAILABLE (and
a call that overran its deadline) with a short backoff, sending the very same request
again — for Send, with the same idempotency key, so a retry never makes a second email.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc
from postwire_client import Client
from postwire_client.sdk import _translate

T = TypeVar("T")

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

# Reconnect quickly once a restarted server listens again (gRPC's default backoff grows
# to two minutes).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class RetryingClient(Client):
    """`send` and `get_status` retry RETRYABLE codes for up to `give_up_after` seconds;
    `retries` counts the retries by status code name (shared across threads)."""

    def __init__(self, address: str, api_key: str, *, give_up_after: float = 90.0, call_timeout: float = 5.0) -> None:
        super().__init__(address, api_key)
        self.channel.close()  # the SDK's plain channel; ours reconnects faster
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = email_service_pb2_grpc.EmailServiceStub(self.channel)
        self.give_up_after = give_up_after
        self.call_timeout = call_timeout
        self.retries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _call(self, rpc: Callable[..., T], request: Any) -> T:
        deadline = time.monotonic() + self.give_up_after
        backoff = 0.05
        while True:
            try:
                return rpc(request, metadata=self.metadata, timeout=self.call_timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code not in RETRYABLE or time.monotonic() + backoff > deadline:
                    raise _translate(error) from None
                with self._lock:
                    self.retries[code.name] += 1
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def send(self, **fields: Any) -> pb.SendResponse:
        if not fields.get("idempotency_key"):
            raise ValueError("a retried Send needs an idempotency_key, or a retry could send twice")
        return self._call(self.stub.Send, pb.SendRequest(**fields))

    def get_status(self, message_id: str) -> pb.GetStatusResponse:
        return self._call(self.stub.GetStatus, pb.GetStatusRequest(message_id=message_id))
