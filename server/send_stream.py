"""SendStream: emails streamed in on one call, each acknowledged once it is stored.

A request carries one email (`message`, acked by a response of its own) or up to
MAX_BATCH (`messages`, acked together in the `acks` of one response per stored group):
per request and per response, gRPC costs about as much as storing an email, so a
client that packs what it has ready streams at SendBatch's rate.

Three parts run per stream. The reader takes a request only while fewer than `window`
emails are unacknowledged (a request of `messages` may pass it by MAX_BATCH - 1); then
it stops reading, and HTTP/2 flow control holds the client back, so a client that
never reads its acks cannot make the server buffer without bound. The storer stores
what arrived while the previous group was being stored as one group (one SendBatch
transaction, whole requests, at most MAX_BATCH emails), after charging the group to
the send budget. A second group starts while one is stored once half a batch waits (so
the server prepares one group while the database commits the other), not for every
email that arrives. The writer sends the acks as their group commits.

A message that cannot be decoded has no sequence to answer it by, nor has a request
that sets both `message` and `messages` or packs more than MAX_BATCH: what came before
it is stored and acknowledged, then the call ends with INVALID_ARGUMENT.

Shutdown and half-close drain: the reader stops, every message it read is stored and
acknowledged, then the call ends (with UNAVAILABLE on shutdown: resend what was not
acknowledged, with the same idempotency keys). A message read but never stored is
never acknowledged; a message stored whose ack could not be sent (the client went
away) is found again by its idempotency key when the client resends it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
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
STORERS = 3  # groups of one stream stored at once: some are prepared while others commit


@dataclass(frozen=True)
class _Read:
    """A request's emails, numbered; `packed` when they came in `messages` (acked in `acks`)."""

    sequences: range
    messages: Sequence[pb.SendRequest | None]  # None: a request without an email
    packed: bool


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
    unacked = 0  # emails read and not yet acknowledged
    room = asyncio.Event()  # set while unacked < window
    room.set()
    incoming: deque[Any] = deque()
    queued = 0  # emails in `incoming`
    busy = 0  # groups being stored
    finished = False  # the end (or an error) was taken: storers stop once idle
    changed = asyncio.Event()  # something arrived, or a group was stored
    acks: asyncio.Queue[Any] = asyncio.Queue()  # (response, emails it acknowledges), an error, or _END

    def put(item: Any) -> None:
        nonlocal queued
        incoming.append(item)
        queued += len(item.sequences) if isinstance(item, _Read) else 0
        changed.set()

    async def read() -> None:
        nonlocal unacked
        try:
            iterator = requests.__aiter__()
            while True:
                while unacked >= window:
                    room.clear()
                    await room.wait()
                try:
                    request = await iterator.__anext__()
                except StopAsyncIteration:
                    return
                got = _read(request)
                put(got)
                if isinstance(got, Undecodable):  # the stream ends there (see store_groups)
                    return
                unacked += len(got.sequences)
        finally:
            put(_END)

    def ready() -> bool:
        """A group may start: no other is being stored, or enough waits to fill one, or the end."""
        return bool(incoming) and (busy == 0 or queued >= MAX_BATCH // 2 or not isinstance(incoming[-1], _Read))

    def take() -> list[Any]:
        """Whole requests, at most MAX_BATCH emails (or one request), ending at an error or the end."""
        nonlocal queued
        group = [incoming.popleft()]
        count = len(group[0].sequences) if isinstance(group[0], _Read) else 0
        while incoming and isinstance(group[-1], _Read):
            following = incoming[0]
            if isinstance(following, _Read) and count + len(following.sequences) > MAX_BATCH:
                break
            group.append(incoming.popleft())
            count += len(following.sequences) if isinstance(following, _Read) else 0
        queued -= count
        return group

    async def store_groups() -> None:
        nonlocal busy, finished
        try:
            while not finished:
                while not finished and not ready():
                    changed.clear()
                    await changed.wait()
                if finished:
                    return
                group = take()
                end = group[-1] if not isinstance(group[-1], _Read) else None
                finished = end is not None
                busy += 1
                try:
                    await store_group([r for r in group if isinstance(r, _Read)])
                finally:
                    busy -= 1
                    changed.set()
                if end is not None:
                    while busy:  # the other groups' acks go first
                        changed.clear()
                        await changed.wait()
                    # An undecodable request has no sequence to answer it by: the call ends with its error.
                    acks.put_nowait(end.error if isinstance(end, Undecodable) else _END)
        except BaseException as exc:  # the database went away, say: end the call with it
            acks.put_nowait(exc)
            raise

    async def store_group(reads: list[_Read]) -> None:
        emails = [(sequence, message) for r in reads for sequence, message in zip(r.sequences, r.messages)]
        if not emails:
            return
        await charge(len(emails))
        outcomes = iter(await store([_item(message, parse) for _, message in emails]))
        packed: list[pb.SendStreamAck] = []
        for r in reads:
            for sequence in r.sequences:
                outcome = next(outcomes)
                if r.packed:
                    packed.append(pb.SendStreamAck(sequence=sequence, **send_outcome(outcome)))
                else:
                    acks.put_nowait((ack(sequence, outcome), 1))
        if packed:
            acks.put_nowait((pb.SendStreamResponse(acks=packed), len(packed)))

    async def stop_reading() -> None:
        await stopping.wait()
        reader.cancel()

    reader = asyncio.create_task(read())
    workers = [asyncio.create_task(store_groups()) for _ in range(STORERS)]
    watcher = asyncio.create_task(stop_reading())
    try:
        while (item := await acks.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            response, count = item
            yield response
            unacked -= count
            if unacked < window:
                room.set()
        if stopping.is_set():
            raise Unavailable("server shutting down; resend the messages that were not acknowledged")
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]
    finally:
        for task in (watcher, reader, *workers):
            task.cancel()
        await asyncio.gather(watcher, reader, *workers, return_exceptions=True)


def _read(request: Any) -> _Read | Undecodable:
    """A request's emails, or why the call ends at it."""
    if isinstance(request, Undecodable):
        return request
    if request.messages:
        if request.HasField("message"):
            return Undecodable(InvalidArgument([FieldViolation("messages", "set message or messages, not both")]))
        if len(request.messages) > MAX_BATCH:
            return Undecodable(InvalidArgument([FieldViolation(
                "messages", f"at most {MAX_BATCH} emails per request, got {len(request.messages)}"
            )]))
        return _Read(range(request.sequence, request.sequence + len(request.messages)), request.messages, packed=True)
    message = request.message if request.HasField("message") else None
    return _Read(range(request.sequence, request.sequence + 1), [message], packed=False)


def _item(message: pb.SendRequest | None, parse: Callable[[pb.SendRequest], Item]) -> Item:
    if message is None:
        return InvalidArgument([FieldViolation("message", "required")])
    return parse(message)
