"""StreamEvents exactness: resume anywhere, out-of-order commits, several processes,
slow readers, shutdown and resume, keep-alives, filters, retention."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest

from postwire.v1 import email_pb2, email_service_pb2, email_service_pb2_grpc, event_pb2
from postwire_client import Client
from tests.conftest import Stack
from tests.e2e.test_full_stack import send_simple, wait_status
from tests.e2e.test_keys_and_limits import create_key, server_process
from tests.support.envoy import run_envoy
from tests.support.processes import Process, wait_serving

E = event_pb2
TERMINAL = {email_pb2.EMAIL_STATUS_SENT, email_pb2.EMAIL_STATUS_BOUNCED, email_pb2.EMAIL_STATUS_FAILED}


def pg(stack: Stack) -> str:
    return stack.env["POSTWIRE_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def second(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, address = server_process(stack, tmp_path_factory.mktemp("streams"))
    yield address
    process.stop()


def test_resuming_at_every_point_gives_exactly_the_remaining_events(stack: Stack) -> None:
    with stack.client() as client:
        ids = [send_simple(client, to=f"resume{i}@example.com", tags=["resume-test"]) for i in range(4)]
        for message_id in ids:
            wait_status(client, message_id, TERMINAL)
        everything = list(client.stream_events(message_ids=ids, idle_timeout=1.0))
        assert len(everything) == 12 and len({e.cursor for e in everything}) == 12
        for i, event in enumerate(everything):
            rest = list(client.stream_events(message_ids=ids, after=event.cursor, idle_timeout=0.5))
            assert [e.cursor for e in rest] == [e.cursor for e in everything[i + 1 :]]
        by_tag = list(client.stream_events(tags=["resume-test"], idle_timeout=1.0))
        assert [e.cursor for e in by_tag] == [e.cursor for e in everything]


def test_out_of_order_commits_never_cause_a_skip(stack: Stack, second: str) -> None:
    """Hold a writer's transaction open (it took a lower event id) while others commit."""
    with stack.client() as client:
        first = send_simple(client, to="early@example.com")
        wait_status(client, first, TERMINAL)
        start = client.get_status(first).events[-1].cursor
    seen: list[event_pb2.Event] = []

    def subscribe() -> None:  # on the second server process
        with Client(second, stack.key_a) as sub:
            for event in sub.follow_events(after=start):
                seen.append(event)
                if len(seen) == 4:  # the late event and the later email's three
                    return

    with psycopg.connect(pg(stack)) as held:
        email_id, account_id = held.execute(
            "SELECT id, account_id FROM emails WHERE public_id = %s", (first,)
        ).fetchone()
        held.execute(
            "INSERT INTO events (account_id, email_id, type, occurred_at, smtp_message, detail, recipient)"
            " VALUES (%s, %s, 'deferred', now(), '', 'late', '')",
            (account_id, email_id),
        )  # this transaction now holds a lower id and stays open
        subscriber = threading.Thread(target=subscribe, daemon=True)
        subscriber.start()
        with stack.client() as client:
            later = send_simple(client, to="later@example.com")
            wait_status(client, later, TERMINAL)  # its events committed after ours began
        time.sleep(1.0)
        assert [e.message_id for e in seen] == [], "events past an open transaction were handed out"
        held.commit()
    subscriber.join(timeout=15)
    assert not subscriber.is_alive()
    assert seen[0].detail == "late"  # the late commit first: nothing behind a handed-out position
    assert [e.message_id for e in seen[1:4]] == [later] * 3
    with stack.client() as client:
        again = list(client.stream_events(after=start, message_ids=[first, later], idle_timeout=1.0))
    assert [e.cursor for e in again] == [e.cursor for e in seen[:4]]


def test_live_events_reach_a_stream_on_another_server_process(stack: Stack, second: str) -> None:
    with Client(second, stack.key_a) as sub, stack.client() as client:
        events = sub.stream_events(from_now=True)
        time.sleep(0.3)
        message_id = send_simple(client, to="live@example.com")
        got = []
        for event in events:
            got.append(event)
            if event.type == E.EVENT_TYPE_SENT:
                break
    assert [e.message_id for e in got] == [message_id] * 3


def test_a_slow_reader_does_not_make_the_server_buffer(stack: Stack, tmp_path: Path) -> None:
    key = create_key(stack, "slow-reader", "--kind", "test")
    with Client(stack.address, key) as client:
        message_id = send_simple(client)
    with psycopg.connect(pg(stack), autocommit=True) as conn:
        email_id, account_id = conn.execute("SELECT id, account_id FROM emails WHERE public_id = %s", (message_id,)).fetchone()
        conn.execute(
            "INSERT INTO events (account_id, email_id, type, occurred_at, smtp_message, detail, recipient)"
            " SELECT %s, %s, 'deferred', now(), repeat('x', 200), 'bulk', '' FROM generate_series(1, 200000)",
            (account_id, email_id),
        )
    process, address = server_process(stack, tmp_path)
    try:
        stub = email_service_pb2_grpc.EmailServiceStub(grpc.insecure_channel(address))
        before = rss_kb(process.proc.pid)
        call = stub.StreamEvents(email_service_pb2.StreamEventsRequest(), metadata=(("x-api-key", key),))
        next(call)  # the stream is running; now read nothing for a while
        time.sleep(4)
        grown_mb = (rss_kb(process.proc.pid) - before) / 1024
        call.cancel()
        assert grown_mb < 40, f"server grew {grown_mb:.0f} MB for a stalled reader of 200k events"
    finally:
        process.stop()
        # Left in the log, the bulk would keep the session's stats rollup busy for 45 s
        # (later tests wait for it to count their events).
        with psycopg.connect(pg(stack), autocommit=True) as conn:
            conn.execute("DELETE FROM events WHERE email_id = %s AND detail = 'bulk'", (email_id,))


def test_shutdown_ends_streams_resumably_and_follow_resumes_without_gaps(stack: Stack, tmp_path: Path) -> None:
    process, address = server_process(stack, tmp_path)
    port = address.rsplit(":", 1)[1]
    stub = email_service_pb2_grpc.EmailServiceStub(grpc.insecure_channel(address))
    raw = stub.StreamEvents(email_service_pb2.StreamEventsRequest(from_now=True), metadata=(("x-api-key", stack.key_a),))
    followed: list[event_pb2.Event] = []

    def follow() -> None:
        with Client(address, stack.key_a) as sub:
            for event in sub.follow_events(from_now=True):
                followed.append(event)
                if len(followed) == 6:
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    time.sleep(0.5)
    with stack.client() as client:
        one = send_simple(client, to="before-restart@example.com")
        wait_status(client, one, TERMINAL)
        time.sleep(0.5)
        process.proc.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as ended:
            for _ in raw:
                pass
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cursor" in ended.value.details()
        process.stop()
        two = send_simple(client, to="after-restart@example.com")  # while no server is there
        restarted = Process(["server"], {**stack.env, "POSTWIRE_GRPC_PORT": port}, tmp_path / "restarted.log")
        try:
            wait_serving(address, restarted)
            follower.join(timeout=20)
        finally:
            restarted.stop()
    assert [e.message_id for e in followed] == [one] * 3 + [two] * 3
    assert len({e.cursor for e in followed}) == 6


def test_idle_streams_get_keep_alives(stack: Stack, tmp_path: Path) -> None:
    process, address = server_process(stack, tmp_path, stream_heartbeat_seconds="1")
    try:
        stub = email_service_pb2_grpc.EmailServiceStub(grpc.insecure_channel(address))
        call = stub.StreamEvents(email_service_pb2.StreamEventsRequest(from_now=True), metadata=(("x-api-key", stack.key_a),))
        started = time.monotonic()
        response = next(call)
        assert not response.HasField("event") and response.HasField("heartbeat")
        assert time.monotonic() - started < 3
        call.cancel()
    finally:
        process.stop()


def test_ndjson_and_sse_through_envoy(stack: Stack, tmp_path: Path) -> None:
    with stack.client() as client:
        message_id = send_simple(client, to="sse@example.com")
        wait_status(client, message_id, TERMINAL)
    port = int(stack.address.rsplit(":", 1)[1])
    for sse in (False, True):
        with run_envoy(port, tmp_path / str(sse), sse=sse) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
            lines = []
            with http.stream("GET", "/v1/events", params={"message_ids": message_id},
                             headers={"x-api-key": stack.key_a}) as stream:
                assert stream.status_code == 200
                if sse:
                    assert stream.headers["content-type"].startswith("text/event-stream")
                for line in stream.iter_lines():
                    if line.strip():
                        lines.append(line)
                    if len(lines) == 3:
                        break
        if sse:
            assert all(line.startswith("data: ") for line in lines)
            lines = [line[len("data: "):] for line in lines]
        import json

        assert [json.loads(line)["event"]["type"] for line in lines] == ["EVENT_TYPE_QUEUED", "EVENT_TYPE_SENDING", "EVENT_TYPE_SENT"]


def test_pruned_data_is_reported_and_old_cursors_are_out_of_range(stack: Stack) -> None:
    key = create_key(stack, "retention-account")
    with Client(stack.address, key) as client:
        message_id = send_simple(client, to="old@example.com")
        status = wait_status(client, message_id, TERMINAL)
        old_cursor = status.events[0].cursor
        time.sleep(1.5)
        # Events are pruned only once the stats rollup has counted them (docs/stats.md):
        # on a busy shared stack it may still be behind this email's last event.
        last = max(e.occurred_at.ToDatetime() for e in status.events)
        deadline = time.monotonic() + 60
        while client.get_stats().counted_through.ToDatetime() < last and time.monotonic() < deadline:
            time.sleep(0.2)
        from tests.support.processes import run

        print(run(["prune", "--events-older-than", "1", "--bodies-older-than", "1"], stack.env))
        pruned = client.get_status(message_id)
        assert pruned.status == email_pb2.EMAIL_STATUS_SENT  # status and metadata stay
        assert pruned.content_pruned_at.seconds > 0
        assert list(pruned.events) == []
        with pytest.raises(Exception) as caught:
            list(client.stream_events(after=old_cursor, idle_timeout=1.0))
        assert caught.value.code == grpc.StatusCode.OUT_OF_RANGE  # type: ignore[attr-defined]
        fresh = send_simple(client, to="new@example.com")
        wait_status(client, fresh, TERMINAL)
        assert [e.message_id for e in client.stream_events(idle_timeout=1.0)] == [fresh] * 3
