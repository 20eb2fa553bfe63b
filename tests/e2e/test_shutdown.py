"""Graceful shutdown under load, with real processes and SIGTERM (what Docker, systemd
and Kubernetes send):

- a server stops accepting, finishes the calls in flight, ends its streams with
  UNAVAILABLE; every Send that returned OK is stored and delivered, and a stream
  resumed from its last cursor on a new server misses and repeats nothing;
- a worker finishes the SMTP transactions it is in, records them, acknowledges only
  what it recorded and exits 0: each email reaches the relay exactly once.
"""

from __future__ import annotations

import secrets
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from postwire.v1 import email_pb2, email_service_pb2, email_service_pb2_grpc, event_pb2
from tests.conftest import Stack
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import Process, wait_serving

S = email_pb2
TERMINAL = {S.EMAIL_STATUS_SENT, S.EMAIL_STATUS_BOUNCED, S.EMAIL_STATUS_FAILED}
SERVER_GRACE = 5.0  # Server.stop's grace for calls in flight
EXIT_MARGIN = 10.0  # on top of it: closing pools and connections


def stub(address: str) -> tuple[grpc.Channel, email_service_pb2_grpc.EmailServiceStub]:
    channel = grpc.insecure_channel(address)
    return channel, email_service_pb2_grpc.EmailServiceStub(channel)


def wait_exit(process: Process, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    code = process.proc.wait(timeout)
    return code, time.monotonic() - started


def wait_terminal(emails: email_service_pb2_grpc.EmailServiceStub, key: str, ids: list[str], timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    for message_id in ids:
        while True:
            reply = emails.GetStatus(email_service_pb2.GetStatusRequest(message_id=message_id),
                                     metadata=(("x-api-key", key),), timeout=5)
            if reply.status in TERMINAL or time.monotonic() > deadline:
                statuses[message_id] = reply.status
                break
            time.sleep(0.05)
    return statuses


@dataclass
class Load:
    """Threads that each call Send back to back (a pause between calls), recording every
    outcome, until stopped."""

    address: str
    key: str
    threads: int = 4
    pause: float = 0.02
    ok: list[tuple[str, float]] = field(default_factory=list)  # message id, time it returned
    errors: Counter[str] = field(default_factory=Counter)
    details: set[str] = field(default_factory=set)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        channel, emails = stub(self.address)
        n = 0
        while not self.stopping.is_set():
            n += 1
            request = email_service_pb2.SendRequest(
                # A domain per email: the per-domain cap never makes a worker put one back.
                from_address="load@example.com", to=[f"load@d{index}-{n}.shutdown.example"], subject="s", text_body="t"
            )
            try:
                reply = emails.Send(request, metadata=(("x-api-key", self.key),), timeout=10)
                self.ok.append((reply.message_id, time.monotonic()))
            except grpc.RpcError as exc:
                self.errors[exc.code().name] += 1
                self.details.add(f"{exc.code().name}: {exc.details()}")
            time.sleep(self.pause)
        channel.close()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=15)


class Stream:
    """A StreamEvents call read on a thread: its events and how it ended."""

    def __init__(self, address: str, key: str, **request: object) -> None:
        self.channel, emails = stub(address)
        self.call = emails.StreamEvents(email_service_pb2.StreamEventsRequest(**request), metadata=(("x-api-key", key),))
        self.events: list[event_pb2.Event] = []
        self.ended: grpc.RpcError | None = None
        self.done = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for response in self.call:
                if response.HasField("event"):
                    self.events.append(response.event)
        except grpc.RpcError as exc:
            self.ended = exc
        self.done.set()

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()


def test_sigterm_under_load_keeps_every_accepted_send_and_streams_resume_without_gap(
    stack: Stack, tmp_path: Path
) -> None:
    account = f"shutdown-{secrets.token_hex(3)}"  # its own event log: nobody else writes to it
    key = make_key(stack.env, account, name="load")
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {**stack.env, "POSTWIRE_GRPC_PORT": str(port)}
    first = Process(["server"], env, tmp_path / "first.log")
    wait_serving(address, first)
    stream = Stream(address, key, from_now=True)
    time.sleep(0.3)  # the stream's from_now position is taken
    load = Load(address, key)
    load.start()
    try:
        time.sleep(1.5)
        sent_before = len(load.ok)
        assert sent_before > 10, load.errors
        first.proc.send_signal(signal.SIGTERM)
        code, _ = wait_exit(first, SERVER_GRACE + EXIT_MARGIN)
        assert code == 0, first.log()
        assert stream.done.wait(5)
        time.sleep(0.3)  # let the senders see the server gone
    finally:
        load.stop()
        stream.close()
    assert stream.ended is not None and stream.ended.code() == grpc.StatusCode.UNAVAILABLE
    assert "cursor" in stream.ended.details()
    # Calls either completed or were refused: UNAVAILABLE, or CANCELLED by gRPC itself
    # for a call that arrived while the server was shutting down (RST_STREAM; the
    # application never saw it, and nothing of it is stored: checked below).
    assert set(load.errors) <= {"UNAVAILABLE", "CANCELLED"}, load.details
    assert load.errors["UNAVAILABLE"] > 0  # the senders kept going past the shutdown
    accepted = [message_id for message_id, _ in load.ok]
    assert len(set(accepted)) == len(accepted)

    second = Process(["server"], env, tmp_path / "second.log")
    try:
        wait_serving(address, second)
        channel, emails = stub(address)
        with channel:
            statuses = wait_terminal(emails, key, accepted)
            assert set(statuses.values()) == {S.EMAIL_STATUS_SENT}, Counter(statuses.values())
            last = stream.events[-1].cursor if stream.events else ""
            resumed = Stream(address, key, after=last) if last else Stream(address, key)
            whole = Stream(address, key)  # the account's entire log, for comparison
            try:
                # Three events per accepted email (queued, sending, sent), whichever stream.
                expected = 3 * len(accepted)
                deadline = time.monotonic() + 30
                while len(stream.events) + len(resumed.events) < expected or len(whole.events) < expected:
                    assert time.monotonic() < deadline, (len(stream.events), len(resumed.events), len(whole.events))
                    time.sleep(0.1)
                time.sleep(0.5)  # anything extra would show up now
            finally:
                resumed.close()
                whole.close()
    finally:
        assert second.stop() == 0
    joined = [e.cursor for e in stream.events + resumed.events]
    assert joined == [e.cursor for e in whole.events], "the resumed stream skipped or repeated events"
    assert len(set(joined)) == len(joined)
    unexpected = {e.message_id: [] for e in whole.events if e.message_id not in set(accepted)}
    for e in whole.events:
        if e.message_id in unexpected:
            unexpected[e.message_id].append(event_pb2.EventType.Name(e.type))
    assert not unexpected, f"stored, though its Send did not answer OK ({load.errors}): {unexpected}"
    kinds: dict[str, list[str]] = {}
    for e in whole.events:
        kinds.setdefault(e.message_id, []).append(event_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_"))
    odd = {m: k for m, k in kinds.items() if k != ["QUEUED", "SENDING", "SENT"]}
    assert not odd, odd
    assert len(joined) == expected
    for message_id in accepted:
        assert received(stack, message_id) == 1


def test_sigterm_mid_send_finishes_the_smtp_transactions_and_sends_each_email_once(stack: Stack) -> None:
    """Both workers are SIGTERMed while the relay stalls in DATA for each of their emails;
    more emails wait in their prefetch. They must finish what they started, record it,
    hand back the rest unacknowledged and exit 0 well within Docker's 45 s grace."""
    stall = 1.5  # below the relays' 2 s timeout: slow, yet a success
    tag = secrets.token_hex(3)
    slow = [f"slow{i}-{tag}@d{i}.example" for i in range(4)]  # distinct domains: no domain cap
    waiting = [f"later{i}-{tag}@e{i}.example" for i in range(12)]
    for rcpt in slow:
        stack.recorder.faults[rcpt] = [f"STALL {stall}"]
    old = list(stack.workers)
    with stack.client() as client:
        slow_ids = [client.send(from_address="a@example.com", to=[r], subject="slow", text_body="t").message_id for r in slow]
        deadline = time.monotonic() + 15
        while not set(slow) <= set(stack.recorder.stalled):
            assert time.monotonic() < deadline, stack.recorder.stalled
            time.sleep(0.02)
        later_ids = [client.send(from_address="a@example.com", to=[r], subject="later", text_body="t").message_id
                     for r in waiting]
        signalled = time.monotonic()
        for worker in old:
            worker.proc.send_signal(signal.SIGTERM)
        try:
            for worker in old:
                code, _ = wait_exit(worker, 30)
                assert code == 0, worker.log()
            took = time.monotonic() - signalled
            for worker in old:
                assert "Traceback" not in worker.log(), worker.log()
        finally:
            for worker in old:
                worker.stop()
            stack.workers[:] = [
                Process(["worker"], stack.env, stack.logs / f"worker-{secrets.token_hex(2)}.log") for _ in range(2)
            ]
        assert took < 20
        # The stalled transactions completed before the workers exited: SENT is recorded
        # by the old workers, not left for the lease to expire.
        for message_id in slow_ids:
            status = client.get_status(message_id)
            assert status.status == S.EMAIL_STATUS_SENT, (message_id, status)
        statuses = {m: wait_status_sync(client, m) for m in slow_ids + later_ids}
        assert set(statuses.values()) == {S.EMAIL_STATUS_SENT}
        # Past the lease (8 s here): nothing comes back for a second attempt.
        time.sleep(float(stack.env["POSTWIRE_LEASE_SECONDS"]) + 2)
        for message_id in slow_ids + later_ids:
            assert received(stack, message_id) == 1, message_id
            status = client.get_status(message_id)
            assert [e.type for e in status.events].count(event_pb2.EVENT_TYPE_SENT) == 1
            assert status.attempts == 1, (message_id, status)


def received(stack: Stack, message_id: str) -> int:
    """Copies of the email that reached either relay."""
    return len(stack.recorder.by_message_id(message_id)) + len(stack.backup.by_message_id(message_id))


def wait_status_sync(client, message_id: str, timeout: float = 30) -> int:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_status(message_id).status
        if status in TERMINAL or time.monotonic() > deadline:
            return status
        time.sleep(0.05)
