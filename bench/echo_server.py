"""The accept path's ceiling: a bare grpc.aio server that echoes the request bytes
(no protobuf parsing, no auth, no database), on the same machine and client."""

from __future__ import annotations

import asyncio
import sys

import grpc


def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def main(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
