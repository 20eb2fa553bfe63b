"""The Python SDK against the real stack: the asyncio client's surface, typed errors with
their details, retries of UNAVAILABLE through a TCP proxy that goes down, a Send whose
answer is lost (retried without a second email), and follow_events resuming by cursor."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest

from postwire.v1 import email_pb2, email_service_pb2, event_pb2
from postwire_client import (
    AsyncClient,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RetryPolicy,
    Unauthenticated,
    Unavailable,
)
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import create_key
from tests.support.proxy import Proxy

E = event_pb2
SENT = email_pb2.EMAIL_STATUS_SENT
FAST_RETRY = RetryPolicy(max_attempts=30, initial_backoff=0.05, max_backoff=0.3, total_timeout=20)


def mail(tag: str, to: str = "async@sdk.example.com") -> dict:
    return {"from_address": "a@example.com", "to": [to], "subject": "async", "text_body": "hello", "tags": [tag]}


async def wait_sent(client: AsyncClient, message_id: str, timeout: float = 20) -> email_service_pb2.GetStatusResponse:
    async with asyncio.timeout(timeout):
        while (status := await client.get_status(message_id)).status != SENT:
            await asyncio.sleep(0.05)
    return status


def emails_tagged(stack: Stack, tag: str) -> set[str]:
    """Every email the account accepted with `tag` (by its QUEUED event)."""
    with stack.client() as client:
        return {e.message_id for e in client.stream_events(tags=[tag], types=[E.EVENT_TYPE_QUEUED], idle_timeout=1.0)}


async def take(events: AsyncIterator[event_pb2.Event], n: int, timeout: float = 30) -> list[event_pb2.Event]:
    got: list[event_pb2.Event] = []
    async with asyncio.timeout(timeout):
        async for event in events:
            got.append(event)
            if len(got) == n:
                break
    return got


async def test_async_client_sends_reads_status_and_follows_events_to_sent(stack: Stack) -> None:
    tag = f"async-{secrets.token_hex(3)}"
    async with AsyncClient(stack.address, stack.key_a) as client:
        reply = await client.send(**mail(tag))
        assert reply.message_id.startswith("msg_") and reply.status == email_pb2.EMAIL_STATUS_QUEUED
        async with aclosing(client.follow_events(message_ids=[reply.message_id])) as events:
            followed = await take(events, 3)
        assert [e.type for e in followed] == [E.EVENT_TYPE_QUEUED, E.EVENT_TYPE_SENDING, E.EVENT_TYPE_SENT]
        status = await wait_sent(client, reply.message_id)
        assert [e.cursor for e in status.events] == [e.cursor for e in followed]
        async with client.stream_events(after=followed[0].cursor, message_ids=[reply.message_id],
                                        idle_timeout=1.0) as stream:
            assert [e.cursor async for e in stream] == [e.cursor for e in followed[1:]]
    assert stack.recorder.wait_for(reply.message_id)


async def test_async_send_takes_a_request_datetimes_and_attachments(stack: Stack) -> None:
    pb = email_service_pb2
    async with AsyncClient(stack.address, stack.key_a) as client:
        scheduled = await client.send(**mail("async-schedule"), send_at=datetime.now(UTC) + timedelta(hours=1),
                                      attachments=[email_pb2.Attachment(filename="a.txt", content_type="text/plain",
                                                                        content=b"attached")])
        assert scheduled.status == email_pb2.EMAIL_STATUS_SCHEDULED
        canceled = await client.cancel_scheduled(scheduled.message_id)
        assert canceled.status == email_pb2.EMAIL_STATUS_CANCELED
        with pytest.raises(FailedPrecondition):  # canceled already: nothing left to cancel
            await client.cancel_scheduled(scheduled.message_id)
        reply = await client.send(pb.SendRequest(**mail("async-request")))
        await wait_sent(client, reply.message_id)
        with pytest.raises(TypeError):
            await client.send(pb.SendRequest(**mail("x")), subject="both")


async def test_async_invalid_send_raises_invalid_argument_with_every_field_violation(stack: Stack) -> None:
    async with AsyncClient(stack.address, stack.key_a) as client:
        with pytest.raises(InvalidArgument) as caught:
            await client.send(from_address="not-an-address", to=["ok@example.com", "bad"], subject="x\r\nBcc: e@x.y")
    fields = {v.field for v in caught.value.violations}
    assert {"from_address", "to[1]", "subject", "text_body"} <= fields
    assert caught.value.attempts == 1 and isinstance(caught.value, ValueError)


async def test_async_bad_cursor_raises_invalid_argument_naming_after(stack: Stack) -> None:
    async with AsyncClient(stack.address, stack.key_a) as client:
        with pytest.raises(InvalidArgument) as caught:
            async for _ in client.stream_events(after="not-a-cursor", idle_timeout=1.0):
                pass
    assert caught.value.violations[0].field == "after"


async def test_async_unknown_key_raises_unauthenticated_without_retrying(stack: Stack) -> None:
    async with AsyncClient(stack.address, "pw_live_unknownunknownunknown") as client:
        with pytest.raises(Unauthenticated) as caught:
            await client.send(**mail("unauth"))
        assert caught.value.attempts == 1
        with pytest.raises(Unauthenticated):
            async with aclosing(client.follow_events()) as events:  # not a resumable status: raised
                await take(events, 1, timeout=10)


async def test_async_missing_scope_is_permission_denied_and_other_accounts_mail_not_found(stack: Stack) -> None:
    send_only = create_key(stack, "account-a", "--scope", "send")
    async with AsyncClient(stack.address, send_only) as client:
        reply = await client.send(**mail("scopes"))
        with pytest.raises(PermissionDenied):
            await client.get_status(reply.message_id)
    async with AsyncClient(stack.address, stack.key_b) as other:
        with pytest.raises(NotFound) as caught:
            await other.get_status(reply.message_id)
    assert isinstance(caught.value, LookupError)


async def test_async_send_retries_unavailable_until_the_server_is_reachable(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    tag = f"retry-{secrets.token_hex(3)}"
    port = int(stack.address.rsplit(":", 1)[1])
    proxy = Proxy(port)  # down: nothing listens on its port yet
    caplog.set_level(logging.INFO, logger="postwire_client")
    try:
        async with AsyncClient(f"127.0.0.1:{proxy.port}", stack.key_a, retry=FAST_RETRY) as client:
            sending = asyncio.create_task(client.send(**mail(tag)))
            await asyncio.sleep(0.8)
            assert not sending.done()
            proxy.up()
            reply = await asyncio.wait_for(sending, 20)
            await wait_sent(client, reply.message_id)
    finally:
        proxy.down()
    retries = [r for r in caplog.records if r.getMessage().startswith("Send failed with UNAVAILABLE")]
    assert retries, "the send never retried"
    assert emails_tagged(stack, tag) == {reply.message_id}


async def test_async_send_gives_up_with_unavailable_after_its_attempts(stack: Stack) -> None:
    proxy = Proxy(int(stack.address.rsplit(":", 1)[1]))  # never up
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.1)
    async with AsyncClient(f"127.0.0.1:{proxy.port}", stack.key_a, retry=policy) as client:
        with pytest.raises(Unavailable) as caught:
            await client.get_status("msg_whatever")
    assert caught.value.attempts == 3 and isinstance(caught.value, ConnectionError)


class AnswerEater(Proxy):
    """A proxy that, once armed, forwards the next request but throws the answer away,
    then cuts that connection: the server did the work, the client sees UNAVAILABLE."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.armed = threading.Event()
        self.eaten = threading.Event()
        self._eating: set[socket.socket] = set()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        from_server = source.getpeername()[1] == self.target[1]
        try:
            while data := source.recv(65536):
                if from_server and (source in self._eating or self.armed.is_set()):
                    if source not in self._eating:
                        self.armed.clear()
                        self._eating.add(source)
                        threading.Timer(3.0, self._cut, args=(source, sink)).start()
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._cut(source, sink)

    def _cut(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if any(s in self._eating for s in sockets):
            self.eaten.set()


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_send_whose_answer_is_lost_is_retried_without_a_second_email(
    stack: Stack, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    tag = f"lost-{flavour}-{secrets.token_hex(3)}"
    caplog.set_level(logging.INFO, logger="postwire_client")
    with AnswerEater(int(stack.address.rsplit(":", 1)[1])) as proxy:
        address = f"127.0.0.1:{proxy.port}"
        if flavour == "async":
            async with AsyncClient(address, stack.key_a, retry=FAST_RETRY) as client:
                with pytest.raises(NotFound):  # the connection is up before the trap is armed
                    await client.get_status("msg_doesnotexist")
                proxy.armed.set()
                message_id = (await client.send(**mail(tag))).message_id
        else:
            with Client(address, stack.key_a, retry=FAST_RETRY) as sync:
                with pytest.raises(NotFound):
                    sync.get_status("msg_doesnotexist")
                proxy.armed.set()
                message_id = await asyncio.to_thread(lambda: sync.send(**mail(tag)).message_id)
    assert proxy.eaten.is_set(), "the first answer was not thrown away"
    assert any(r.getMessage().startswith("Send failed with UNAVAILABLE") for r in caplog.records)
    assert emails_tagged(stack, tag) == {message_id}  # the retry got the original answer


async def test_without_an_idempotency_key_a_lost_answer_is_not_retried(stack: Stack) -> None:
    """The other side of the coin: the first attempt did commit, so retrying an unkeyed
    Send would have sent twice; the client raises instead."""
    tag = f"unkeyed-{secrets.token_hex(3)}"
    with AnswerEater(int(stack.address.rsplit(":", 1)[1])) as proxy:
        async with AsyncClient(f"127.0.0.1:{proxy.port}", stack.key_a, retry=FAST_RETRY,
                               auto_idempotency_key=False) as client:
            with pytest.raises(NotFound):
                await client.get_status("msg_doesnotexist")
            proxy.armed.set()
            with pytest.raises(Unavailable) as caught:
                await client.send(**mail(tag))
    assert caught.value.attempts == 1
    assert len(emails_tagged(stack, tag)) == 1  # accepted although the client saw an error


async def test_async_follow_resumes_by_cursor_after_the_connection_drops(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    tag = f"follow-{secrets.token_hex(3)}"
    caplog.set_level(logging.INFO, logger="postwire_client")
    with Proxy(int(stack.address.rsplit(":", 1)[1])) as proxy, stack.client() as direct:
        async with AsyncClient(f"127.0.0.1:{proxy.port}", stack.key_a) as client:
            async with aclosing(client.follow_events(tags=[tag])) as events:
                one = direct.send(**mail(tag, "one@sdk.example.com")).message_id
                first = await take(events, 3)
                proxy.down()  # cuts the open stream
                two = direct.send(**mail(tag, "two@sdk.example.com")).message_id
                await asyncio.sleep(0.5)
                proxy.up()
                second = await take(events, 3)
    followed = first + second
    assert [e.message_id for e in followed] == [one] * 3 + [two] * 3
    assert len({e.cursor for e in followed}) == 6
    assert any("resuming after" in r.getMessage() for r in caplog.records)
