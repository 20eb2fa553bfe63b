"""`AsyncClient.send_stream`: many emails over one SendStream call, acks as they come.

Each request gets a sequence number (its position in the input, from 0) and, unless it
has one, an idempotency key. What is ready goes out packed, up to 500 emails (or about
4 MB) in one request's `messages`, so that one stream carries about as many emails a
second as SendBatch; the acks of a packed request come in a response's `acks`, and are
yielded one by one. The unacknowledged ones are kept; when the call fails
with UNAVAILABLE (the server restarted, the connection dropped) the helper opens a
new call, resends them first with the same keys (the server answers the same ids for
what it had stored) and goes on with the input. So every input ends with exactly one
ack, and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import grpc

from postwire.v1 import email_service_pb2 as pb
from postwire_client.retry import new_idempotency_key, wait_or_raise

_PACK = 500  # emails per request at most
_PACK_BYTES = 4 << 20  # and about this many bytes
_DONE = object()


async def _pump(requests: AsyncIterable[pb.SendRequest] | Iterable[pb.SendRequest], ready: asyncio.Queue[Any]) -> None:
    """The input into `ready` (bounded: the input is read only as fast as it is sent),
    then _DONE, or the exception the input raised."""
    try:
        if isinstance(requests, AsyncIterable):
            async for request in requests:
                await ready.put(request)
        else:
            for request in requests:
                await ready.put(request)
        await ready.put(_DONE)
    except Exception as exc:  # the caller's iterator failed: the stream ends with its error
        await ready.put(exc)


def _runs(items: list[tuple[int, pb.SendRequest]]) -> Iterator[pb.SendStreamRequest]:
    """Requests for (sequence, email) pairs: consecutive sequences packed, up to _PACK."""
    run: list[tuple[int, pb.SendRequest]] = []
    for sequence, message in items:
        if run and (sequence != run[-1][0] + 1 or len(run) == _PACK):
            yield pb.SendStreamRequest(sequence=run[0][0], messages=[m for _, m in run])
            run = []
        run.append((sequence, message))
    if run:
        yield pb.SendStreamRequest(sequence=run[0][0], messages=[m for _, m in run])


def _cancel_if_failed(writer: asyncio.Task[None], call: Any) -> None:
    """A writer that failed (the input raised) ends the call, which would otherwise wait
    for requests that never come."""
    if _input_error(writer) is not None:
        call.cancel()


def _input_error(writer: asyncio.Task[None]) -> BaseException | None:
    """What the writer raised other than the call's own end (which the reads report)."""
    if not writer.done() or writer.cancelled():
        return None
    error = writer.exception()
    return None if isinstance(error, grpc.RpcError) else error


async def send_stream(client: Any, requests: AsyncIterable[pb.SendRequest] | Iterable[pb.SendRequest]
                      ) -> AsyncIterator[pb.SendStreamAck]:
    ready: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * _PACK)
    pump = asyncio.create_task(_pump(requests, ready))
    unacked: dict[int, pb.SendRequest] = {}  # by sequence, in input order
    next_sequence = 0
    exhausted = False
    started, attempt = time.monotonic(), 0

    def own(request: pb.SendRequest) -> pb.SendRequest:
        nonlocal next_sequence
        message = pb.SendRequest()
        message.CopyFrom(request)
        if not message.idempotency_key and client.auto_idempotency_key:
            message.idempotency_key = new_idempotency_key()
        unacked[next_sequence] = message
        next_sequence += 1
        return message

    def taken(item: Any) -> bool:
        """False at the end of the input; raises what the input raised."""
        nonlocal exhausted
        if isinstance(item, Exception):
            raise item
        exhausted = item is _DONE
        return not exhausted

    async def feed(call: Any) -> None:
        await call.initial_metadata()  # the server accepted the call (see server/servicer.py)
        if call.done():
            return
        for request in _runs(list(unacked.items())):  # first what the last call left unacknowledged
            await call.write(request)
        while not exhausted and taken(item := await ready.get()):
            first, size = next_sequence, 0
            packed = [own(item)]
            size += packed[-1].ByteSize()
            while len(packed) < _PACK and size < _PACK_BYTES and not ready.empty():
                if not taken(item := ready.get_nowait()):
                    break
                packed.append(own(item))
                size += packed[-1].ByteSize()
            await call.write(pb.SendStreamRequest(sequence=first, messages=packed))
        await call.done_writing()

    try:
        while True:
            call = client.stub.SendStream(metadata=client.metadata)
            writer = asyncio.create_task(feed(call))
            writer.add_done_callback(lambda task, call=call: _cancel_if_failed(task, call))
            try:
                async for reply in call:
                    for one in reply.acks or [reply]:
                        if unacked.pop(one.sequence, None) is not None:
                            started, attempt = time.monotonic(), 0  # progress: the retry budget starts again
                            yield one
                await writer
                if exhausted and not unacked:
                    return
            except (grpc.aio.AioRpcError, asyncio.CancelledError) as error:
                failed = _input_error(writer)
                if failed is not None:  # the input raised: the call was cancelled for it
                    raise failed from None
                if isinstance(error, asyncio.CancelledError):
                    raise
                keyed = all(m.idempotency_key for m in unacked.values())
                wait = wait_or_raise(client.retry, "SendStream", error, attempt=attempt, started=started, retry=keyed,
                                     retry_deadline_exceeded=keyed)
                await asyncio.sleep(wait)
                attempt += 1
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                call.cancel()
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
