"""Load shedding on a real grpc.aio server: past the cap, unary calls are answered
UNAVAILABLE at once; the calls in progress finish; health checks always pass."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from server.interceptors import ErrorInterceptor
from server.overload import OverloadInterceptor


async def test_calls_past_the_cap_are_refused_at_once_and_the_others_finish() -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started.set()
        await release.wait()
        return request

    server = grpc.aio.server(interceptors=[ErrorInterceptor(), OverloadInterceptor(1)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Slow", {"Echo": grpc.unary_unary_rpc_method_handler(slow)}),)
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/test.Slow/Echo")
            first = asyncio.ensure_future(echo(b"first"))
            await asyncio.wait_for(started.wait(), 5)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await asyncio.wait_for(echo(b"second"), 2)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "retry shortly" in (refused.value.details() or "")
            check = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            release.set()
            assert await first == b"first"
            assert await echo(b"third") == b"third"  # room again
    finally:
        await server.stop(None)
