"""The unsubscribe link's methods take no API key and are limited per client address
(behind a trusted proxy, the address it forwarded)."""

from __future__ import annotations

from typing import Any

import grpc
from google.api import httpbody_pb2

from core.limits.local import LocalRateLimiter
from postwire.v1 import unsubscribe_service_pb2 as pb
from postwire.v1 import unsubscribe_service_pb2_grpc
from server.auth import AuthInterceptor
from server.interceptors import ErrorInterceptor
from server.policy import ANONYMOUS_METHODS, policy_for


class Pages(unsubscribe_service_pb2_grpc.UnsubscribeServiceServicer):
    async def ShowUnsubscribe(self, request: Any, context: Any) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="text/html", data=b"<p>ok</p>")


async def _server(limit: int) -> tuple[grpc.aio.Server, int]:
    keys: Any = None  # never consulted: no key is looked up for these methods
    auth = AuthInterceptor(keys, LocalRateLimiter(), 30, frozenset({"127.0.0.1"}), anonymous_per_minute=limit)
    server = grpc.aio.server(interceptors=[ErrorInterceptor(), auth])
    unsubscribe_service_pb2_grpc.add_UnsubscribeServiceServicer_to_server(Pages(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def test_the_two_methods_are_public_and_nothing_else_is() -> None:
    assert {policy_for(m) for m in ANONYMOUS_METHODS} == {None}
    assert policy_for("/postwire.v1.UnsubscribeService/Other") is not None


async def test_calls_without_a_key_are_limited_per_forwarded_address() -> None:
    server, port = await _server(limit=3)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = unsubscribe_service_pb2_grpc.UnsubscribeServiceStub(channel)
            request = pb.ShowUnsubscribeRequest(token="t")
            for _ in range(3):
                page = await stub.ShowUnsubscribe(request, metadata=[("x-forwarded-for", "198.51.100.7")])
                assert page.data == b"<p>ok</p>"
            try:
                await stub.ShowUnsubscribe(request, metadata=[("x-forwarded-for", "198.51.100.7")])
                raise AssertionError("the fourth call was allowed")
            except grpc.aio.AioRpcError as error:
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            other = await stub.ShowUnsubscribe(request, metadata=[("x-forwarded-for", "198.51.100.8")])
            assert other.data == b"<p>ok</p>"
    finally:
        await server.stop(None)
