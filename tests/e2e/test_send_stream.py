"""SendStream on the full stack: acks as emails are stored, errors per email, flow
control against a client that never reads its acks, reconnects that resend what was
not acknowledged without duplicates, a server restart mid-stream, tenant isolation,
and the JSON path through the real Envoy."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import grpc
import httpx
import psycopg

from postwire.v1 import email_pb2, email_service_pb2_grpc
from postwire.v1 import email_service_pb2 as pb
from postwire_client import AsyncClient, Client
from tests.conftest import Stack
from tests.e2e.test_full_stack import wait_status
from tests.e2e.test_keys_and_limits import create_key, server_process
from tests.support.envoy import run_envoy
from tests.support.ports import free_port
from tests.support.processes import Process, wait_serving

SENT = email_pb2.EMAIL_STATUS_SENT


def fresh_key(stack: Stack) -> str:
    """A key of an account of its own with a high send limit: these tests send thousands
    of emails, which must not spend the shared keys' budgets (or be slowed by them). A
    test key: delivery is recorded without SMTP, so the shared workers are not flooded."""
    return create_key(stack, f"stream-{secrets.token_hex(3)}", "--kind", "test", "--send-per-minute", "1000000")


def message(to: str, **fields: object) -> pb.SendRequest:
    values: dict[str, object] = dict(from_address="stream@example.com", to=[to], subject="Stream", text_body="Hi")
    values.update(fields)
    return pb.SendRequest(**values)  # type: ignore[arg-type]


def count_emails(stack: Stack, subject: str) -> int:
    with psycopg.connect(stack.env["POSTWIRE_DATABASE_URL"].replace("+psycopg", "")) as conn:
        return conn.execute("SELECT count(*) FROM emails WHERE content->>'subject' = %s", (subject,)).fetchone()[0]


async def _collect(address: str, key: str, requests: list[pb.SendRequest]) -> list[pb.SendStreamResponse]:
    async with AsyncClient(address, key) as client:
        return [ack async for ack in client.send_stream(requests)]


def test_every_email_is_acknowledged_once_with_its_sequence_and_bad_ones_alone(stack: Stack) -> None:
    tag = secrets.token_hex(4)
    requests = [message(f"s{n}-{tag}@example.com", subject=f"stream {tag}") for n in range(300)]
    requests[7] = message("not an address")
    requests[8] = message(f"nul-{tag}@example.com", subject="nul\u0000here")
    key = fresh_key(stack)
    acks = asyncio.run(_collect(stack.address, key, requests))
    assert sorted(a.sequence for a in acks) == list(range(300))
    by_sequence = {a.sequence: a for a in acks}
    assert by_sequence[7].error.code == 3 and by_sequence[7].error.field_violations[0].field.startswith("to")
    assert by_sequence[8].error.code == 3 and by_sequence[8].error.field_violations[0].field == "subject"
    accepted = [a for a in acks if a.WhichOneof("result") == "accepted"]
    assert len(accepted) == 298 and len({a.accepted.message_id for a in accepted}) == 298
    assert count_emails(stack, f"stream {tag}") == 298
    with Client(stack.address, key) as client:
        assert wait_status(client, by_sequence[0].accepted.message_id, {SENT}).status == SENT
    with Client(stack.address, stack.key_b) as other:  # another account sees none of them
        assert all(e.message_id not in {a.accepted.message_id for a in accepted}
                   for e in other.stream_events(idle_timeout=0.5))


def test_a_client_that_never_reads_acks_is_held_at_the_window(stack: Stack, tmp_path: Path) -> None:
    process, address = server_process(stack, tmp_path, send_stream_window="20")
    tag, key = secrets.token_hex(4), fresh_key(stack)
    try:
        async def flood() -> tuple[int, int]:
            # Without BDP probing the client's receive window stays at HTTP/2's 64 KB, so
            # unread acks soon fill it (with probing it grows to megabytes first).
            async with grpc.aio.insecure_channel(address, options=[("grpc.http2.bdp_probe", 0)]) as channel:
                call = email_service_pb2_grpc.EmailServiceStub(channel).SendStream(metadata=(("x-api-key", key),))
                written = 0

                async def write() -> None:
                    nonlocal written
                    for n in range(100_000):
                        await call.write(pb.SendStreamRequest(sequence=n, message=message(f"f{n}@example.com",
                                                                                      subject=f"flood {tag}",
                                                                                      text_body="x" * 200)))
                        written += 1

                writer = asyncio.create_task(write())
                counts: list[int] = []  # never reading a single ack, watch what gets stored
                while len(counts) < 4 or len(set(counts[-4:])) > 1:  # unchanged for 1.5 s
                    assert len(counts) < 60, f"the server kept reading: {counts}"
                    await asyncio.sleep(0.5)
                    counts.append(count_emails(stack, f"flood {tag}"))
                writer.cancel()
                call.cancel()
                return counts[-1], written

        stored, written = asyncio.run(flood())
        # The server stopped reading: its window of unacknowledged emails, plus the acks
        # that fit the client's unread 64 KB receive window (about 1,500 acks).
        # What the client wrote beyond that waits in HTTP/2 buffers, bounded by the
        # transport's flow-control windows, not by anything the servicer holds.
        assert 20 <= stored <= 2000, (stored, written)
    finally:
        process.stop()


def test_a_server_restart_mid_stream_loses_and_duplicates_nothing(stack: Stack, tmp_path: Path) -> None:
    env = {**stack.env, "POSTWIRE_GRPC_PORT": str(free_port())}
    address = f"127.0.0.1:{env['POSTWIRE_GRPC_PORT']}"
    servers = [Process(["server"], env, tmp_path / "server-0.log")]
    wait_serving(address, servers[0])

    def restart() -> None:  # SIGTERM (drains), then a new process on the same port
        servers[0].stop()
        servers.append(Process(["server"], env, tmp_path / "server-1.log"))
        wait_serving(address, servers[-1])

    tag, key = secrets.token_hex(4), fresh_key(stack)
    total = 800

    async def run() -> list[pb.SendStreamResponse]:
        acks: list[pb.SendStreamResponse] = []

        async def requests():  # noqa: ANN202
            for n in range(total):
                yield message(f"r{n}-{tag}@example.com", subject=f"restart {tag}")

        async with AsyncClient(address, key) as client:
            async for ack in client.send_stream(requests()):
                acks.append(ack)
                if len(acks) == 300:
                    await asyncio.to_thread(restart)
        return acks

    try:
        acks = asyncio.run(run())
    finally:
        servers[-1].stop()
    assert len(servers) == 2
    assert sorted(a.sequence for a in acks) == list(range(total))
    ids = {a.accepted.message_id for a in acks}
    assert len(ids) == total
    assert count_emails(stack, f"restart {tag}") == total


def test_send_stream_as_json_through_envoy(stack: Stack, tmp_path: Path) -> None:
    port = int(stack.address.rsplit(":", 1)[1])
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        body = [
            {"sequence": "1", "message": {"from_address": "j@example.com", "to": ["json-stream@example.com"],
                                          "subject": "JSON stream", "text_body": "a"}},
            {"sequence": "2", "message": {"from_address": "j@example.com", "to": ["nobody"], "subject": "x",
                                          "text_body": "b"}},
        ]
        reply = http.post("/v1/emails:stream", headers={"x-api-key": stack.key_a}, json=body)
        assert reply.status_code == 200, reply.text
        acks = {a["sequence"]: a for a in (json.loads(line) for line in reply.text.splitlines() if line.strip())}
        assert acks["1"]["accepted"]["message_id"].startswith("msg_")
        assert acks["2"]["error"]["code"] == 3
    deadline = time.monotonic() + 20
    with stack.client() as client:
        assert wait_status(client, acks["1"]["accepted"]["message_id"], {SENT}).status == SENT
    assert time.monotonic() < deadline


def test_a_client_that_disconnects_and_resends_with_the_same_keys_gets_the_same_ids(stack: Stack) -> None:
    key, tag = fresh_key(stack), secrets.token_hex(4)
    requests = [message(f"d{n}-{tag}@example.com", subject=f"disconnect {tag}", idempotency_key=f"{tag}-{n}")
                for n in range(200)]

    async def first_half() -> dict[int, str]:
        got: dict[int, str] = {}
        async with grpc.aio.insecure_channel(stack.address) as channel:
            call = email_service_pb2_grpc.EmailServiceStub(channel).SendStream(metadata=(("x-api-key", key),))
            for n, request in enumerate(requests):
                await call.write(pb.SendStreamRequest(sequence=n, message=request))
            async for ack in call:
                got[ack.sequence] = ack.accepted.message_id
                if len(got) == 50:
                    call.cancel()  # gone without a word: the rest may or may not be stored
                    break
        return got

    early = asyncio.run(first_half())
    acks = asyncio.run(_collect(stack.address, key, requests))
    ids = {a.sequence: a.accepted.message_id for a in acks}
    assert sorted(ids) == list(range(200)) and len(set(ids.values())) == 200
    assert all(ids[n] == message_id for n, message_id in early.items())
    assert count_emails(stack, f"disconnect {tag}") == 200


async def _raw(address: str, key: str, requests: list[pb.SendStreamRequest]
               ) -> tuple[list[pb.SendStreamResponse], grpc.StatusCode, str]:
    """Every response of one SendStream call fed `requests`, and how the call ended."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = email_service_pb2_grpc.EmailServiceStub(channel).SendStream(metadata=(("x-api-key", key),))
        try:
            for request in requests:
                await call.write(request)
            await call.done_writing()
        except grpc.aio.AioRpcError:  # the server ended the call before reading all of them
            pass
        replies = []
        try:
            while (reply := await call.read()) is not grpc.aio.EOF:
                replies.append(reply)
        except grpc.aio.AioRpcError:  # how it ended is asked below
            pass
        return replies, await call.code(), await call.details()


def test_packed_requests_get_their_acks_together_and_single_ones_alone(stack: Stack) -> None:
    tag, key = secrets.token_hex(4), fresh_key(stack)
    packed = [message(f"p{n}-{tag}@example.com", subject=f"packed {tag}") for n in range(250)]
    packed[3] = message("not an address")
    requests = [
        pb.SendStreamRequest(sequence=0, messages=packed[:200]),
        pb.SendStreamRequest(sequence=200, message=packed[200]),
        pb.SendStreamRequest(sequence=201, messages=packed[201:]),
    ]
    replies, code, _ = asyncio.run(_raw(stack.address, key, requests))
    assert code == grpc.StatusCode.OK
    singles = [r for r in replies if not r.acks]
    assert [r.sequence for r in singles] == [200] and singles[0].WhichOneof("result") == "accepted"
    acks = [a for r in replies for a in r.acks]
    assert sorted(a.sequence for a in acks) == [n for n in range(250) if n != 200]
    refused = [a for a in acks if a.WhichOneof("result") == "error"]
    assert [a.sequence for a in refused] == [3] and refused[0].error.field_violations[0].field.startswith("to")
    assert count_emails(stack, f"packed {tag}") == 249


def test_a_request_with_message_and_messages_or_over_1000_ends_the_call_after_the_acks_before_it(
    stack: Stack,
) -> None:
    tag, key = secrets.token_hex(4), fresh_key(stack)
    good = pb.SendStreamRequest(sequence=0, messages=[message(f"g{tag}@example.com", subject=f"ends {tag}")])
    both = pb.SendStreamRequest(sequence=1, message=message("a@example.com"), messages=[message("b@example.com")])
    huge = pb.SendStreamRequest(sequence=1, messages=[message(f"h{n}@example.com") for n in range(1001)])
    for bad, field, words in ((both, "messages", "not both"), (huge, "messages", "at most 1000")):
        replies, code, details = asyncio.run(_raw(stack.address, key, [good, bad, good]))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert [a.sequence for r in replies for a in r.acks] == [0]  # the request before it, and nothing after
    assert count_emails(stack, f"ends {tag}") == 2


def test_an_input_that_fails_ends_send_stream_with_its_error_after_what_it_gave(stack: Stack) -> None:
    tag, key = secrets.token_hex(4), fresh_key(stack)

    async def requests():  # noqa: ANN202
        for n in range(3):
            yield message(f"e{n}-{tag}@example.com", subject=f"fails {tag}")
            await asyncio.sleep(0.2)  # each one is sent (and acked) before the next
        raise RuntimeError("the input broke")

    async def run() -> tuple[list[int], str]:
        got: list[int] = []
        async with AsyncClient(stack.address, key) as client:
            try:
                async for ack in client.send_stream(requests()):
                    got.append(ack.sequence)
            except RuntimeError as exc:
                return got, str(exc)
        return got, ""

    got, error = asyncio.run(run())
    assert error == "the input broke"
    assert count_emails(stack, f"fails {tag}") == 3
