"""Observability end to end: Prometheus metrics of a real server and a real worker, JSON
log lines that share the request id from the RPC to the worker, and no secret or body
in any log.

A small stack of its own (server, worker, scheduler; JSON logs; metrics on free ports;
transient failures retried only after a minute, so deferred emails stay deferred).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from postwire.v1 import email_pb2, email_service_pb2, email_service_pb2_grpc
from postwire_client import AsyncClient, Client, InvalidArgumentError
from tests.e2e.test_full_stack import send_simple, wait_status
from tests.support.keys import make_key
from tests.support.ports import free_ports
from tests.support.processes import Process, run, running_stack
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env

S = email_pb2
FINAL = {S.EMAIL_STATUS_SENT, S.EMAIL_STATUS_BOUNCED, S.EMAIL_STATUS_FAILED, S.EMAIL_STATUS_SUPPRESSED}


@dataclass
class ObsStack:
    address: str
    key: str
    secret_key: str
    server_metrics: str
    worker_metrics: str
    recorder: Recorder
    processes: list[Process]
    env: dict[str, str]

    def client(self) -> Client:
        return Client(self.address, self.key)

    def stub(self, channel: grpc.Channel) -> email_service_pb2_grpc.EmailServiceStub:
        return email_service_pb2_grpc.EmailServiceStub(channel)

    def log(self, name: str) -> str:
        return next(p for p in self.processes if p.args == [name]).log()


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsStack]:
    logs = tmp_path_factory.mktemp("obs-logs")
    with fresh_database() as database_url, fresh_queue_prefix() as prefix, SmtpServer() as smtp:
        grpc_port, server_metrics, worker_metrics = free_ports(3)
        env = stack_env(
            database_url=database_url,
            queue_prefix=prefix,
            grpc_port=grpc_port,
            smtp_relays=json.dumps([{"host": "127.0.0.1", "port": smtp.port, "timeout": 2}]),
            log_format="json",
            metrics_port=str(server_metrics),
            worker_metrics_port=str(worker_metrics),
            queue_metrics_interval="0.2",
            retry_min_backoff_ms="60000",
            retry_max_backoff_ms="120000",
            retry_lifetime_seconds="600",
        )
        run(["migrate"], env)
        key = make_key(env, "observed", name="obs")
        with running_stack(env, logs, f"127.0.0.1:{grpc_port}") as processes:
            yield ObsStack(
                f"127.0.0.1:{grpc_port}", key, env["POSTWIRE_SECRET_KEY"],
                f"http://127.0.0.1:{server_metrics}/metrics", f"http://127.0.0.1:{worker_metrics}/metrics",
                smtp.recorder, processes, env,
            )


# Helpers ------------------------------------------------------------------------------


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.1)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def metadata(pairs: Any) -> dict[str, str]:
    return {k: v for k, v in (pairs or ())}


def raw_send(obs: ObsStack, request_id: str | None = None, **fields: Any) -> tuple[Any, dict[str, str]]:
    request = email_service_pb2.SendRequest(
        from_address="sender@example.com", to=["rcpt@example.com"], subject="hi", text_body="hello", **fields
    )
    headers = [("x-api-key", obs.key)] + ([("x-request-id", request_id)] if request_id else [])
    with grpc.insecure_channel(obs.address) as channel:
        reply, call = obs.stub(channel).Send.with_call(request, metadata=headers, timeout=10)
    return reply, metadata(call.initial_metadata())


# Metrics ------------------------------------------------------------------------------


def test_server_counts_rpcs_by_method_and_status_code_with_latency(obs: ObsStack) -> None:
    before = scrape(obs.server_metrics)
    with obs.client() as client:
        send_simple(client)
        with pytest.raises(InvalidArgumentError):
            client.send(from_address="not an address", to=["rcpt@example.com"], subject="x", text_body="x")
    name = "postwire_grpc_server_handled_total"
    labels = {"grpc_service": "postwire.v1.EmailService", "grpc_method": "Send", "grpc_type": "unary"}

    def moved(**more: str) -> float:
        return value(scrape(obs.server_metrics), name, **labels, **more) - value(before, name, **labels, **more)

    # An error's status reaches the client as the call is aborted, a moment before the
    # interceptor counts it: hence `eventually`.
    eventually(lambda: moved(grpc_code="OK") >= 1)
    eventually(lambda: moved(grpc_code="INVALID_ARGUMENT") == 1)
    count = "postwire_grpc_server_handling_seconds_count"
    assert value(scrape(obs.server_metrics), count, grpc_method="Send") - value(before, count, grpc_method="Send") >= 2
    # An unknown key is counted too, with its code (the auth layer refuses it).
    with Client(obs.address, "pw_live_" + "x" * 40) as stranger, pytest.raises(Exception):
        stranger.get_status("msg_nothing")
    eventually(lambda: value(scrape(obs.server_metrics), name, grpc_method="GetStatus", grpc_code="UNAUTHENTICATED") >= 1)


def test_batch_and_stream_emails_are_counted_by_method_and_outcome(obs: ObsStack) -> None:
    name = "postwire_bulk_emails_total"
    before = scrape(obs.server_metrics)
    good = email_service_pb2.SendRequest(from_address="a@example.com", to=["bulk@example.com"], subject="s", text_body="t")
    bad = email_service_pb2.SendRequest(from_address="a@example.com", to=["nobody"], subject="s", text_body="t")

    async def stream() -> None:
        async with AsyncClient(obs.address, obs.key) as client:
            assert len([ack async for ack in client.send_stream([good, good, bad])]) == 3

    with obs.client() as client:
        client.send_batch([good, bad, bad])
    asyncio.run(stream())
    after = scrape(obs.server_metrics)

    def moved(method: str, outcome: str) -> float:
        return value(after, name, grpc_method=method, outcome=outcome) - value(before, name, grpc_method=method, outcome=outcome)

    assert (moved("SendBatch", "accepted"), moved("SendBatch", "refused")) == (1, 2)
    assert (moved("SendStream", "accepted"), moved("SendStream", "refused")) == (2, 1)


def test_transitions_and_delivery_attempts_are_counted_by_outcome_and_reply_class(obs: ObsStack) -> None:
    obs.recorder.faults["soft@example.com"] = ["451 4.3.0 Try again later"]
    obs.recorder.faults["hard@example.com"] = ["550 5.1.1 No such user"]
    server_before, worker_before = scrape(obs.server_metrics), scrape(obs.worker_metrics)
    with obs.client() as client:
        sent = send_simple(client, to="fine@example.com")
        bounced = send_simple(client, to="hard@example.com")
        deferred = send_simple(client, to="soft@example.com")
        assert wait_status(client, sent, FINAL).status == S.EMAIL_STATUS_SENT
        assert wait_status(client, bounced, FINAL).status == S.EMAIL_STATUS_BOUNCED
        assert wait_status(client, deferred, {S.EMAIL_STATUS_DEFERRED}).status == S.EMAIL_STATUS_DEFERRED

    def moved(before: dict, url: str, name: str, **labels: str) -> float:  # type: ignore[type-arg]
        return value(scrape(url), name, **labels) - value(before, name, **labels)

    transitions = "postwire_email_transitions_total"
    attempts = "postwire_delivery_attempts_total"
    # The server stores QUEUED; the worker SENDING and the outcome of each attempt.
    assert moved(server_before, obs.server_metrics, transitions, to="queued") >= 3
    eventually(lambda: moved(worker_before, obs.worker_metrics, transitions, to="sending") >= 3)
    for to in ("sent", "bounced", "deferred"):
        assert moved(worker_before, obs.worker_metrics, transitions, to=to) >= 1, to
    assert moved(worker_before, obs.worker_metrics, attempts, outcome="sent", reply_class="2xx") >= 1
    assert moved(worker_before, obs.worker_metrics, attempts, outcome="bounced", reply_class="5xx") >= 1
    assert moved(worker_before, obs.worker_metrics, attempts, outcome="deferred", reply_class="4xx") >= 1
    messages = "postwire_worker_messages_total"
    eventually(lambda: moved(worker_before, obs.worker_metrics, messages, actor="deliver_email", outcome="done") >= 3)
    assert value(scrape(obs.worker_metrics), "postwire_smtp_transaction_seconds_count") >= 3


def test_delivery_attempt_without_an_smtp_reply_has_reply_class_none(obs: ObsStack) -> None:
    obs.recorder.faults["drop@example.com"] = ["DISCONNECT"]
    before = scrape(obs.worker_metrics)
    with obs.client() as client:
        message_id = send_simple(client, to="drop@example.com")
        assert wait_status(client, message_id, {S.EMAIL_STATUS_DEFERRED}).status == S.EMAIL_STATUS_DEFERRED
    name = "postwire_delivery_attempts_total"
    eventually(lambda: value(scrape(obs.worker_metrics), name, outcome="deferred", reply_class="none")
               > value(before, name, outcome="deferred", reply_class="none"))


def test_queue_depth_gauges_show_deferred_emails_and_their_age(obs: ObsStack) -> None:
    obs.recorder.faults["later@example.com"] = ["421 4.7.0 Busy"]
    with obs.client() as client:
        message_id = send_simple(client, to="later@example.com")
        wait_status(client, message_id, {S.EMAIL_STATUS_DEFERRED})
    eventually(lambda: value(scrape(obs.worker_metrics), "postwire_emails_waiting", status="deferred") >= 1)
    time.sleep(1.2)
    samples = eventually(lambda: scrape(obs.worker_metrics))
    assert value(samples, "postwire_emails_waiting_oldest_seconds", status="deferred") >= 1.0
    assert ("postwire_emails_waiting", frozenset({("status", "queued")})) in samples
    deliver_queues = [ls for (n, ls) in samples if n == "postwire_broker_queue_messages"]
    assert any(dict(ls)["queue"].endswith(".deliver") for ls in deliver_queues), deliver_queues


def test_open_stream_gauge_follows_streams_as_they_open_and_close(obs: ObsStack) -> None:
    name, labels = "postwire_grpc_server_streams_open", {"grpc_method": "StreamEvents"}
    base = value(scrape(obs.server_metrics), name, **labels)
    channel = grpc.insecure_channel(obs.address)
    call = obs.stub(channel).StreamEvents(
        email_service_pb2.StreamEventsRequest(from_now=True), metadata=[("x-api-key", obs.key)]
    )
    reader = threading.Thread(target=drain, args=(call,), daemon=True)
    reader.start()
    try:
        eventually(lambda: value(scrape(obs.server_metrics), name, **labels) == base + 1)
    finally:
        call.cancel()
        channel.close()
    eventually(lambda: value(scrape(obs.server_metrics), name, **labels) == base)
    try:
        eventually(lambda: stream_events_by_code(obs).get("CANCELLED", 0) >= 1)
    except AssertionError:
        raise AssertionError(f"StreamEvents by code: {stream_events_by_code(obs)}") from None


def test_streams_the_client_cancels_at_any_moment_end_cancelled_without_an_error_log(obs: ObsStack) -> None:
    # A cancel that races the stream's headers used to surface as INTERNAL, logged as an
    # unhandled error: gRPC raises on sending to a call the client already left.
    for _ in range(80):
        channel = grpc.insecure_channel(obs.address)
        call = obs.stub(channel).StreamEvents(
            email_service_pb2.StreamEventsRequest(from_now=True), metadata=[("x-api-key", obs.key)]
        )
        threading.Thread(target=drain, args=(call,), daemon=True).start()
        time.sleep(random.random() * 0.05)
        call.cancel()
        channel.close()
    eventually(lambda: value(scrape(obs.server_metrics), "postwire_grpc_server_streams_open",
                             grpc_method="StreamEvents") == 0)
    # (RESOURCE_EXHAUSTED may show too, when cancelled streams still hold the key's 10 slots)
    codes = stream_events_by_code(obs)
    assert "CANCELLED" in codes and not set(codes) & {"INTERNAL", "UNKNOWN"}, codes
    assert "unhandled error" not in obs.log("server")


def stream_events_by_code(obs: ObsStack) -> dict[str, float]:
    """StreamEvents calls the server counted, by the gRPC code they ended with."""
    return {dict(ls)["grpc_code"]: v for (n, ls), v in scrape(obs.server_metrics).items()
            if n == "postwire_grpc_server_handled_total" and ("grpc_method", "StreamEvents") in ls}


def drain(call: Any) -> None:
    """Read a stream to its end; the end a cancel gives it is expected."""
    try:
        for _ in call:
            pass
    except grpc.RpcError as error:
        if error.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED):
            raise


def test_a_worker_whose_metrics_port_is_taken_logs_it_and_runs_on(obs: ObsStack, tmp_path: Path) -> None:
    assert "worker metrics on http://127.0.0.1:" in obs.log("worker")
    second = Process(["worker"], obs.env, tmp_path / "second-worker.log")  # same metrics port
    try:
        eventually(lambda: "worker metrics not served" in second.log())
        time.sleep(0.5)
        second.check_alive()
    finally:
        second.stop()
    scrape(obs.worker_metrics)  # the first worker still serves


# Logs -----------------------------------------------------------------------------------


def test_one_send_logs_the_same_request_id_in_the_server_and_the_worker(obs: ObsStack) -> None:
    request_id = f"obs-{secrets.token_hex(6)}"
    reply, headers = raw_send(obs, request_id=request_id)
    assert headers["x-request-id"] == request_id
    with obs.client() as client:
        wait_status(client, reply.message_id, FINAL)

    def lines(name: str) -> list[dict[str, Any]]:
        return [line for line in json_lines(obs.log(name)) if line.get("request_id") == request_id]

    server = eventually(lambda: lines("server"))
    access = [line for line in server if line["logger"] == "postwire.rpc"]
    assert access and access[0]["code"] == "OK" and access[0]["rpc"] == "/postwire.v1.EmailService/Send"
    assert access[0]["message_id"] == reply.message_id and isinstance(access[0]["account_id"], int)
    worker = eventually(lambda: [line for line in lines("worker") if line.get("message_id") == reply.message_id])
    assert all(line["account_id"] == access[0]["account_id"] for line in worker)
    for line in server + worker:
        assert {"time", "level", "logger", "message"} <= set(line)


def test_every_log_line_of_the_stack_is_json(obs: ObsStack) -> None:
    for name in ("server", "worker", "scheduler"):
        lines = [line for line in obs.log(name).splitlines() if line.strip()]
        assert lines, name
        # "listening on ..." is the CLI's own stdout for scripts; the rest are log records.
        odd = [line for line in lines if not line.startswith("{") and not line.startswith("listening on ")]
        assert not odd, (name, odd[:5])


def test_a_request_id_is_made_when_none_or_a_bad_one_is_sent_and_errors_carry_it(obs: ObsStack) -> None:
    _, made = raw_send(obs)
    assert len(made["x-request-id"]) == 32
    _, replaced = raw_send(obs, request_id="bad id with spaces")
    assert replaced["x-request-id"] not in ("", "bad id with spaces")
    with grpc.insecure_channel(obs.address) as channel, pytest.raises(grpc.RpcError) as caught:
        obs.stub(channel).GetStatus(
            email_service_pb2.GetStatusRequest(message_id="msg_missing"),
            metadata=[("x-api-key", obs.key), ("x-request-id", "lookup-1")],
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert metadata(caught.value.trailing_metadata())["x-request-id"] == "lookup-1"
    eventually(lambda: [
        line for line in json_lines(obs.log("server"))
        if line.get("request_id") == "lookup-1" and line.get("code") == "NOT_FOUND"
    ])


def test_no_api_key_secret_key_or_body_reaches_any_log(obs: ObsStack) -> None:
    body = f"body-text-{secrets.token_hex(8)}"
    html = f"<p>html-body-{secrets.token_hex(8)}</p>"
    wrong_key = "pw_live_" + secrets.token_hex(20)
    obs.recorder.faults["body-soft@example.com"] = ["451 4.3.0 later: " + "x"]
    with obs.client() as client:
        ids = [
            send_simple(client, to="body-ok@example.com", text_body=body, html_body=html),
            send_simple(client, to="body-soft@example.com", text_body=body),
        ]
        for message_id in ids:
            wait_status(client, message_id, FINAL | {S.EMAIL_STATUS_DEFERRED})
    with Client(obs.address, wrong_key) as stranger, pytest.raises(Exception):
        stranger.send(from_address="a@example.com", to=["b@example.com"], subject="s", text_body=body)
    time.sleep(0.5)  # let the last lines reach the files
    for process in obs.processes:
        text = process.log()
        for needle in (obs.key, wrong_key, obs.secret_key, body, "html-body-"):
            assert needle not in text, (process.args, needle[:12])


async def test_transitions_count_at_commit_and_never_for_a_rolled_back_transaction(tmp_path: Path) -> None:
    from core.emails.model import EventType, NewEvent
    from core.observability import metrics
    from core.storage.db import make_engine

    def count(to: str) -> float:
        return metrics.EMAIL_TRANSITIONS.labels(to=to)._value.get()

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}")
    sent, canceled = count("sent"), count("canceled")
    try:
        async with engine.begin() as conn:
            metrics.note_events(conn, [NewEvent(EventType.SENT), NewEvent(EventType.SENT)])
            assert count("sent") == sent  # not before the commit
        assert count("sent") == sent + 2
        with pytest.raises(RuntimeError):
            async with engine.begin() as conn:
                metrics.note_events(conn, [NewEvent(EventType.CANCELED)])
                raise RuntimeError("rolled back")
        async with engine.begin() as conn:  # the next transaction starts clean
            pass
        assert count("canceled") == canceled
    finally:
        await engine.dispose()


def test_health_watch_streams_with_the_request_id_in_its_headers(obs: ObsStack) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(obs.address) as channel:
        call = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), metadata=[("x-request-id", "watch-1")], timeout=10
        )
        first = next(call)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        assert metadata(call.initial_metadata())["x-request-id"] == "watch-1"
        call.cancel()
