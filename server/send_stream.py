"""SendStream: emails streamed in on one call, each acknowledged once it is stored.

Three parts run per stream. The reader takes a message only while fewer than `window`
are unacknowledged; then it stops reading, and HTTP/2 flow control holds the client
back, so a client that never reads its acks cannot make the server buffer without
bound. The storer stores what arrived while the previous group was being stored as one
group (one SendBatch transaction, at most MAX_BATCH emails), after charging the group
to the send budget. The writer sends each ack as its group commits.

A message that cannot be decoded has no sequence to answer it by: what came before it
is stored and acknowledged, then the call ends with INVALID_ARGUMENT.

Shutdown and half-close drain: the reader stops, every message it read is stored and
acknowledged, then the call ends (with UNAVAILABLE on shutdown: resend what was not
acknowledged, with the same idempotency keys). A message read but never stored is
never acknowledged; a message stored whose ack could not be sent (the client went
away) is found again by its idempotency key when the client resends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from core.emails.content import EmailContent
from core.emails.model import Status
from core.emails.service import MAX_BATCH, SendOptions
from core.errors import FieldViolation, InvalidArgument, PostwireError, Unavailable
from postwire.v1 import email_service_pb2 as pb
from server.convert import send_outcome
from server.decoding import Undecodable

Item = tuple[EmailContent, SendOptions] | PostwireError
StoreBatch = Callable[[Sequence[Item]], Awaitable[list[tuple[str, Status] | Exception]]]
Charge = Callable[[int], Awaitable[None]]
_END = object()


def ack(sequence: int, outcome: tuple[str, Status] | Exception) -> pb.SendStreamResponse:
    return pb.SendStreamResponse(sequence=sequence, **send_outcome(outcome))


async def send_stream(
    requests: AsyncIterator[Any],
    *,
    parse: Callable[[pb.SendRequest], Item],
    store: StoreBatch,
    charge: Charge,
    window: int,
    stopping: asyncio.Event,
) -> AsyncIterator[pb.SendStreamResponse]:
    slots = asyncio.Semaphore(window)
    incoming: asyncio.Queue[Any] = asyncio.Queue()
    acks: asyncio.Queue[Any] = asyncio.Queue()

    async def read() -> None:
        try:
            async for request in _after_slots(requests, slots):
                incoming.put_nowait(request)
                if isinstance(request, Undecodable):  # the stream ends there (see store_groups)
                    break
        finally:
            incoming.put_nowait(_END)

    async def store_groups() -> None:
        try:
            ended = False
            while not ended:
                group = [await incoming.get()]
                while not incoming.empty() and len(group) < MAX_BATCH:
                    group.append(incoming.get_nowait())
                if group[-1] is _END:
                    ended = True
                    group.pop()
                broken = next((r for r in group if isinstance(r, Undecodable)), None)
                if broken is not None:  # no sequence to answer it by: the call ends with its error
                    group = group[: group.index(broken)]
                if group:
                    await charge(len(group))
                    outcomes = await store([_item(request, parse) for request in group])
                    for request, outcome in zip(group, outcomes, strict=True):
                        acks.put_nowait(ack(request.sequence, outcome))
                if broken is not None:
                    acks.put_nowait(broken.error)  # after the acks of what came before it
                    return
            acks.put_nowait(_END)
        except BaseException as exc:  # the database went away, say: end the call with it
            acks.put_nowait(exc)
            raise

    async def stop_reading() -> None:
        await stopping.wait()
        reader.cancel()

    reader = asyncio.create_task(read())
    storer = asyncio.create_task(store_groups())
    watcher = asyncio.create_task(stop_reading())
    try:
        while (item := await acks.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
            slots.release()
        if stopping.is_set():
            raise Unavailable("server shutting down; resend the messages that were not acknowledged")
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]
    finally:
        for task in (watcher, reader, storer):
            task.cancel()
        await asyncio.gather(watcher, reader, storer, return_exceptions=True)


async def _after_slots(requests: AsyncIterator[Any], slots: asyncio.Semaphore) -> AsyncIterator[Any]:
    """The requests, each read only once a slot is free (a slot is freed by its ack)."""
    iterator = requests.__aiter__()
    while True:
        await slots.acquire()
        try:
            request = await iterator.__anext__()
        except StopAsyncIteration:
            return
        yield request


def _item(request: pb.SendStreamRequest, parse: Callable[[pb.SendRequest], Item]) -> Item:
    if not request.HasField("message"):
        return InvalidArgument([FieldViolation("message", "required")])
    return parse(request.message)

