"""`AsyncClient.send_stream`: many emails over one SendStream call, acks as they come.

Each request gets a sequence number (its position in the input, from 0) and, unless it
has one, an idempotency key. The unacknowledged ones are kept; when the call fails
with UNAVAILABLE (the server restarted, the connection dropped) the helper opens a
new call, resends them first with the same keys (the server answers the same ids for
what it had stored) and goes on with the input. So every input ends with exactly one
ack, and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import grpc

from postwire.v1 import email_service_pb2 as pb
from postwire_client.retry import new_idempotency_key, wait_or_raise


async def _inputs(requests: AsyncIterable[pb.SendRequest] | Iterable[pb.SendRequest]) -> AsyncIterator[pb.SendRequest]:
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            yield request
    else:
        for request in requests:
            yield request


async def send_stream(client: Any, requests: AsyncIterable[pb.SendRequest] | Iterable[pb.SendRequest]
                      ) -> AsyncIterator[pb.SendStreamResponse]:
    source = _inputs(requests)
    unacked: dict[int, pb.SendRequest] = {}  # by sequence, in input order
    next_sequence = 0
    exhausted = False
    started, attempt = time.monotonic(), 0

    async def feed(call: Any) -> None:
        nonlocal next_sequence, exhausted
        await call.initial_metadata()  # the server accepted the call (see server/servicer.py)
        if call.done():
            return
        for sequence, message in list(unacked.items()):  # first what the last call left unacknowledged
            await call.write(pb.SendStreamRequest(sequence=sequence, message=message))
        while not exhausted:
            try:
                request = await source.__anext__()
            except StopAsyncIteration:
                exhausted = True
                break
            message = pb.SendRequest()
            message.CopyFrom(request)
            if not message.idempotency_key and client.auto_idempotency_key:
                message.idempotency_key = new_idempotency_key()
            unacked[next_sequence] = message
            await call.write(pb.SendStreamRequest(sequence=next_sequence, message=message))
            next_sequence += 1
        await call.done_writing()

    while True:
        call = client.stub.SendStream(metadata=client.metadata)
        writer = asyncio.create_task(feed(call))
        try:
            async for reply in call:
                if unacked.pop(reply.sequence, None) is not None:
                    started, attempt = time.monotonic(), 0  # progress: the retry budget starts again
                    yield reply
            await writer
            if exhausted and not unacked:
                return
        except grpc.aio.AioRpcError as error:
            keyed = all(m.idempotency_key for m in unacked.values())
            wait = wait_or_raise(client.retry, "SendStream", error, attempt=attempt, started=started, retry=keyed,
                                 retry_deadline_exceeded=keyed)
            await asyncio.sleep(wait)
            attempt += 1
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            call.cancel()
