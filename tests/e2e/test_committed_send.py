"""Once Send has committed the email it answers OK, whatever the publish does after.

A real server runs in this process on the session stack's database and queues, with its
publisher made to fail in every way a publish can fail after the commit: an AMQP error,
errors that are not AMQP errors at all, a cancellation from inside the publish, a
confirm that never comes, a message that went out but whose confirm was lost, and a
failure to record the publish. Each Send must answer OK with its id, and the stack's
real workers and scheduler must deliver each email exactly once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiormq
import pytest

from core.emails.service import EmailService
from core.settings import Settings
from postwire.v1 import email_pb2
from postwire_client import Client
from server.app import Server
from tests.conftest import Stack
from tests.e2e.test_full_stack import wait_status
from tests.support.ports import free_port

S = email_pb2
PUBLISH_TIMEOUT = 0.5


async def _cancelled_from_inside() -> None:
    """What awaiting a confirm looks like when the channel closes under it."""
    confirm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    confirm.cancel()
    await confirm


async def _never_confirmed() -> None:
    await asyncio.sleep(3600)


Fault = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]


def raising(error: BaseException) -> Fault:
    async def fault(publish: Callable[[], Awaitable[None]]) -> None:
        raise error

    return fault


async def published_then_confirm_lost(publish: Callable[[], Awaitable[None]]) -> None:
    await publish()  # the message is on the queue...
    raise ConnectionResetError("connection reset before the confirm arrived")  # ...but we never hear so


FAULTS: dict[str, Fault] = {
    "amqp-channel-invalid": raising(aiormq.exceptions.ChannelInvalidStateError("writer is None")),
    "amqp-connection-closed": raising(aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED")),
    "not-amqp-runtime-error": raising(RuntimeError("something nobody expected")),
    "not-amqp-attribute-error": raising(AttributeError("'NoneType' object has no attribute 'write'")),
    "not-amqp-key-error": raising(KeyError("delivery tag")),
    "cancelled-inside-publish": lambda publish: _cancelled_from_inside(),
    "confirm-never-comes": lambda publish: _never_confirmed(),
    "published-then-confirm-lost": published_then_confirm_lost,
}


class FaultyPublisher:
    """The server's real publisher, with the next queued fault applied to each publish."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.faults: list[Fault] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def publish(self, email_id: int) -> None:
        fault = self.faults.pop(0) if self.faults else None
        if fault is None:
            await self.real.publish(email_id)
        else:
            await fault(lambda: self.real.publish(email_id))


class InProcessServer:
    """`Server` on its own event loop in a thread, so the test can reach inside it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.server: Server | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
            self.stopping = asyncio.Event()
            self.server = Server(self.settings)
            await self.server.start()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        await self.stopping.wait()
        await self.server.stop(1.0)

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        assert self.ready.wait(30), "the in-process server did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(15)


@dataclass
class Faulty:
    address: str
    publisher: FaultyPublisher
    service: EmailService


@pytest.fixture
def faulty(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faulty]:
    for name, value in stack.env.items():
        if name.startswith("POSTWIRE_"):
            monkeypatch.setenv(name, value)
    port = free_port()
    monkeypatch.setenv("POSTWIRE_GRPC_PORT", str(port))
    monkeypatch.setenv("POSTWIRE_METRICS_PORT", "0")
    monkeypatch.setenv("POSTWIRE_PUBLISH_TIMEOUT_SECONDS", str(PUBLISH_TIMEOUT))
    with InProcessServer(Settings()) as running:
        assert running.server is not None
        service = running.server.service
        publisher = FaultyPublisher(service.publisher)
        service.publisher = publisher  # type: ignore[assignment]
        yield Faulty(f"127.0.0.1:{port}", publisher, service)


def test_send_answers_ok_once_committed_whatever_the_publish_does(stack: Stack, faulty: Faulty) -> None:
    sent: dict[str, str] = {}
    with Client(faulty.address, stack.key_a) as client:
        for name, fault in FAULTS.items():
            faulty.publisher.faults.append(fault)
            reply = client.send(
                from_address="a@example.com", to=[f"{name}@committed.example"], subject=name, text_body=name
            )
            assert reply.status == S.EMAIL_STATUS_QUEUED, name
            sent[name] = reply.message_id
        assert not faulty.publisher.faults  # every fault met a Send
        for name, message_id in sent.items():
            status = wait_status(client, message_id, {S.EMAIL_STATUS_SENT}, timeout=30)
            assert status.status == S.EMAIL_STATUS_SENT, name
    for name, message_id in sent.items():
        stack.recorder.wait_for(message_id)
        assert len(stack.recorder.by_message_id(message_id)) == 1, f"{name}: delivered more than once"


def test_send_answers_ok_when_noting_the_publish_fails(
    stack: Stack, faulty: Faulty, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(email_id: int) -> None:
        raise RuntimeError("the published marks are broken")

    monkeypatch.setattr(faulty.service.published, "add", broken)
    with Client(faulty.address, stack.key_a) as client:
        reply = client.send(from_address="a@example.com", to=["marks@committed.example"], subject="m", text_body="m")
        assert reply.status == S.EMAIL_STATUS_QUEUED
        assert wait_status(client, reply.message_id, {S.EMAIL_STATUS_SENT}, timeout=30).status == S.EMAIL_STATUS_SENT
    stack.recorder.wait_for(reply.message_id)
    assert len(stack.recorder.by_message_id(reply.message_id)) == 1


def test_send_answers_ok_when_bookkeeping_after_the_call_fails(
    stack: Stack, faulty: Faulty, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metrics and the access log line run after the servicer returned: their failure
    must not replace the OK of a committed Send."""
    from server import metrics as rpc_metrics
    from server import request_id

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bookkeeping is broken")

    monkeypatch.setattr(rpc_metrics.HANDLED, "labels", broken)
    monkeypatch.setattr(rpc_metrics.HANDLING, "labels", broken)
    monkeypatch.setattr(request_id.log, "info", broken)
    with Client(faulty.address, stack.key_a) as client:
        reply = client.send(from_address="a@example.com", to=["books@committed.example"], subject="b", text_body="b")
        assert reply.status == S.EMAIL_STATUS_QUEUED
        assert wait_status(client, reply.message_id, {S.EMAIL_STATUS_SENT}, timeout=30).status == S.EMAIL_STATUS_SENT
    stack.recorder.wait_for(reply.message_id)
    assert len(stack.recorder.by_message_id(reply.message_id)) == 1
