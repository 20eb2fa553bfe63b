"""Idle connections and idle streams do not starve other clients: with 200 raw TCP
connections that send nothing (or half an HTTP/2 preface) and 50 open, idle event
streams, a new client's Send and GetStatus still answer within a second. grpc's
defaults hold up (no server option was needed): idle connections cost a file
descriptor each and no event-loop time. On a server
process of its own, so the shared stack is not loaded."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from postwire.v1 import email_service_pb2, email_service_pb2_grpc
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import server_process
from tests.fuzz.conftest import assert_healthy, fuzz_key
from tests.support.processes import Process

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture
def server(stack: Stack, tmp_path: Path) -> Iterator[tuple[Process, str]]:
    # The documented stream poll interval (1 s), not the shared stack's 0.05 s: at 0.05 s
    # each idle stream re-reads the event log 20 times a second, and 50 of them (1000
    # queries/s through a 20-connection pool) alone put Send at ~0.5 s here.
    process, address = server_process(stack, tmp_path, stream_poll_interval="1.0")
    yield process, address
    process.stop()


def timed(call) -> float:  # noqa: ANN001
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_idle_connections_and_streams_do_not_starve_other_clients(stack: Stack, server: tuple[Process, str]) -> None:
    process, address = server
    host, port = address.rsplit(":", 1)
    key = fuzz_key(stack)
    metadata = (("x-api-key", key),)

    request = email_service_pb2.SendRequest(from_address="a@example.com", to=["b@example.com"], subject="s", text_body="t")
    with grpc.insecure_channel(address) as warm:  # pools, broker connection, key cache: warm
        stub = email_service_pb2_grpc.EmailServiceStub(warm)
        baseline = timed(lambda: stub.Send(request, metadata=metadata, timeout=5)) + timed(lambda: stub.Send(request, metadata=metadata, timeout=5))

    sockets = []
    for i in range(200):
        sock = socket.create_connection((host, int(port)), timeout=5)
        if i % 2:  # half a connection preface, then silence
            sock.sendall(PREFACE[: 1 + i % (len(PREFACE) - 1)])
        sockets.append(sock)

    channels = [grpc.insecure_channel(address) for _ in range(5)]
    streams = []
    try:
        for i in range(50):
            stub = email_service_pb2_grpc.EmailServiceStub(channels[i % 5])
            streams.append(stub.StreamEvents(email_service_pb2.StreamEventsRequest(from_now=True), metadata=metadata))
        time.sleep(1.0)  # every stream is open and waiting
        assert not any(s.done() for s in streams), [s.code() for s in streams if s.done()]

        with grpc.insecure_channel(address) as fresh:  # a new client, on a new connection
            stub = email_service_pb2_grpc.EmailServiceStub(fresh)
            holder: dict[str, str] = {}
            took = timed(lambda: holder.update(id=stub.Send(request, metadata=metadata, timeout=5).message_id))
            assert took < 1.0, f"Send took {took:.2f}s (warm, unloaded: {baseline / 2:.2f}s)"
            status = email_service_pb2.GetStatusRequest(message_id=holder["id"])
            took = timed(lambda: stub.GetStatus(status, metadata=metadata, timeout=5))
            assert took < 1.0, f"GetStatus took {took:.2f}s"
        assert timed(lambda: assert_healthy(address)) < 1.0
    finally:
        for stream in streams:
            stream.cancel()
        for channel in channels:
            channel.close()
        for sock in sockets:
            sock.close()
    process.check_alive()
    assert_healthy(address)
