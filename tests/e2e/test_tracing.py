"""OpenTelemetry tracing end to end: one trace from the Send RPC through the worker to
the SMTP transaction, exported over OTLP/HTTP to a tiny collector in this process; and
nothing exported at all while tracing is off.

A stack of its own (server, worker, scheduler) with POSTWIRE_OTEL_ENDPOINT pointing at
the collector and a 100 ms batch delay (OTEL_BSP_SCHEDULE_DELAY), so spans arrive fast.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from postwire.v1 import email_pb2, email_service_pb2, email_service_pb2_grpc
from postwire_client import Client
from tests.e2e.test_full_stack import wait_status
from tests.e2e.test_observability import eventually
from tests.support.keys import make_key
from tests.support.ports import free_ports
from tests.support.processes import run, running_stack
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env

S = email_pb2
FINAL = {S.EMAIL_STATUS_SENT, S.EMAIL_STATUS_BOUNCED, S.EMAIL_STATUS_FAILED, S.EMAIL_STATUS_SUPPRESSED}
SERVER, CONSUMER, CLIENT = (
    trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CONSUMER, trace_pb2.Span.SPAN_KIND_CLIENT
)


# A collector in the test process --------------------------------------------------------


@dataclass
class Exported:
    """One span as the collector received it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class Collector:
    """Accepts OTLP/HTTP protobuf exports on POST /v1/traces and keeps their spans."""

    url: str = ""
    spans: list[Exported] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every request's path, /v1/traces or not
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, path: str, body: bytes) -> bool:
        with self.lock:
            self.requests.append(path)
        if path != "/v1/traces":
            return False
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    with self.lock:
                        self.spans.append(Exported(
                            str(resource.get("service.name")), span.name, span.kind, span.trace_id.hex(),
                            span.span_id.hex(), span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes}, span.status.code,
                        ))
        return True

    def where(self, having: dict[str, Any] | None = None, **wanted: Any) -> list[Exported]:
        """The spans with these fields and (`having`) these attributes."""
        with self.lock:
            spans = list(self.spans)
        return [
            s for s in spans
            if all(getattr(s, k) == v for k, v in wanted.items())
            and all(s.attributes.get(k) == v for k, v in (having or {}).items())
        ]

    def one(self, having: dict[str, Any] | None = None, **wanted: Any) -> Exported:
        """The one such span, once it has arrived."""
        found = eventually(lambda: self.where(having, **wanted), timeout=15)
        assert len(found) == 1, found
        return found[0]


@contextmanager
def collector() -> Iterator[Collector]:
    store = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding", "identity") != "identity":
                self.send_error(415)
                return
            if not store.receive(self.path, body):
                self.send_error(404)
                return
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    store.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()


# A stack that traces ----------------------------------------------------------------------


@dataclass
class TracedStack:
    address: str
    key: str
    recorder: Recorder
    smtp_port: int
    collector: Collector

    def client(self) -> Client:
        return Client(self.address, self.key)


@contextmanager
def stack(logs: Path, collector: Collector, otel_endpoint: str, **env_extra: str) -> Iterator[TracedStack]:
    with fresh_database() as database_url, fresh_queue_prefix() as prefix, SmtpServer() as smtp:
        grpc_port, server_metrics, worker_metrics = free_ports(3)
        env = stack_env(
            database_url=database_url,
            queue_prefix=prefix,
            grpc_port=grpc_port,
            smtp_relays=json.dumps([{"host": "127.0.0.1", "port": smtp.port, "timeout": 2}]),
            metrics_port=str(server_metrics),
            worker_metrics_port=str(worker_metrics),
            otel_endpoint=otel_endpoint,
            otel_service_name="pwtest",
        )
        env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
        env.update({"OTEL_BSP_SCHEDULE_DELAY": "100", **env_extra})
        run(["migrate"], env)
        key = make_key(env, "traced", name="traced")
        with running_stack(env, logs, f"127.0.0.1:{grpc_port}"):
            yield TracedStack(f"127.0.0.1:{grpc_port}", key, smtp.recorder, smtp.port, collector)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedStack]:
    with collector() as spans:
        # A URL without a path: the exporter posts to /v1/traces.
        with stack(tmp_path_factory.mktemp("traced-logs"), spans, spans.url) as running:
            yield running


def raw_send(stack: TracedStack, to: str, metadata: list[tuple[str, str]]) -> str:
    request = email_service_pb2.SendRequest(
        from_address="sender@example.com", to=[to], subject="traced", text_body="hello"
    )
    with grpc.insecure_channel(stack.address) as channel:
        reply = email_service_pb2_grpc.EmailServiceStub(channel).Send(
            request, metadata=[("x-api-key", stack.key), *metadata], timeout=10
        )
    with stack.client() as client:
        wait_status(client, reply.message_id, FINAL)
    return str(reply.message_id)


# With tracing on ----------------------------------------------------------------------------


def test_send_deliver_and_smtp_share_one_trace_continuing_the_callers(traced: TracedStack) -> None:
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    request_id = f"trace-{secrets.token_hex(4)}"
    message_id = raw_send(
        traced, "traced@example.com",
        [("traceparent", f"00-{caller_trace}-{caller_span}-01"), ("x-request-id", request_id)],
    )
    spans = traced.collector

    send = spans.one(trace_id=caller_trace, name="postwire.v1.EmailService/Send")
    assert (send.service, send.kind, send.parent_id) == ("pwtest-server", SERVER, caller_span)
    assert send.attributes["rpc.system"] == "grpc"
    assert send.attributes["rpc.service"] == "postwire.v1.EmailService"
    assert send.attributes["rpc.method"] == "Send"
    assert send.attributes["rpc.grpc.status_code"] == 0
    assert send.attributes["postwire.request_id"] == request_id
    assert send.attributes["postwire.message_id"] == message_id

    deliver = spans.one(trace_id=caller_trace, name="deliver_email")
    assert (deliver.service, deliver.kind, deliver.parent_id) == ("pwtest-worker", CONSUMER, send.span_id)
    assert deliver.attributes["postwire.message_id"] == message_id
    assert deliver.attributes["postwire.attempt"] == 1
    assert deliver.attributes["postwire.outcome"] == "sent"
    assert deliver.attributes["postwire.request_id"] == request_id

    smtp = spans.one(trace_id=caller_trace, name="smtp send")
    assert (smtp.service, smtp.kind, smtp.parent_id) == ("pwtest-worker", CLIENT, deliver.span_id)
    assert smtp.attributes["postwire.smtp.relay"] == f"127.0.0.1:{traced.smtp_port}"
    assert smtp.attributes["postwire.smtp.recipients"] == 1
    assert smtp.attributes["postwire.smtp.reply_code"] == 250
    assert smtp.status == trace_pb2.Status.STATUS_CODE_UNSET


def test_a_send_without_traceparent_starts_a_trace_and_a_bounce_marks_the_smtp_span(traced: TracedStack) -> None:
    traced.recorder.faults["gone@example.com"] = ["550 5.1.1 No such user"]
    message_id = raw_send(traced, "gone@example.com", [])
    spans = traced.collector

    send = spans.one({"postwire.message_id": message_id}, name="postwire.v1.EmailService/Send")
    assert send.parent_id == ""  # a root span
    deliver = spans.one(trace_id=send.trace_id, name="deliver_email")
    assert deliver.parent_id == send.span_id and deliver.attributes["postwire.outcome"] == "bounced"
    smtp = spans.one(trace_id=send.trace_id, name="smtp send")
    assert smtp.parent_id == deliver.span_id
    assert smtp.attributes["postwire.smtp.reply_code"] == 550
    assert smtp.status == trace_pb2.Status.STATUS_CODE_ERROR


def test_a_refused_call_is_traced_with_its_status_code_and_health_checks_are_not(traced: TracedStack) -> None:
    request_id = f"refused-{secrets.token_hex(4)}"
    with grpc.insecure_channel(traced.address) as channel, pytest.raises(grpc.RpcError) as caught:
        email_service_pb2_grpc.EmailServiceStub(channel).GetStatus(
            email_service_pb2.GetStatusRequest(message_id="msg_none"),
            metadata=[("x-api-key", "pw_live_" + "x" * 40), ("x-request-id", request_id)],
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    span = traced.collector.one({"postwire.request_id": request_id}, name="postwire.v1.EmailService/GetStatus")
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert span.status == trace_pb2.Status.STATUS_CODE_UNSET  # the caller's mistake, not a server error
    assert not [s for s in traced.collector.where() if s.name.startswith("grpc.health.")]


# With tracing off ---------------------------------------------------------------------------


def test_nothing_is_exported_when_tracing_is_off(tmp_path: Path) -> None:
    with collector() as spans:
        # Even the SDK's own variables pointing at a collector change nothing.
        with stack(tmp_path, spans, "", OTEL_EXPORTER_OTLP_ENDPOINT=spans.url,
                   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{spans.url}/v1/traces") as running:
            with running.client() as client:
                message_id = client.send(
                    from_address="sender@example.com", to=["quiet@example.com"], subject="s", text_body="b"
                ).message_id
                assert wait_status(client, message_id, FINAL).status == S.EMAIL_STATUS_SENT
            time.sleep(1.0)  # ten batch delays
        assert spans.requests == []


# The no-op path, in this process --------------------------------------------------------


def test_tracing_off_is_a_no_op() -> None:
    from opentelemetry import trace

    from core.observability import context, tracing
    from core.settings import Settings
    from server.tracing import rpc_tracing

    settings = Settings(secret_key="x" * 32)  # type: ignore[arg-type]
    assert settings.otel_endpoint == ""
    handle = tracing.setup(settings, "server")
    assert handle.provider is None and not tracing.enabled()
    assert isinstance(tracing.tracer(), trace.NoOpTracer)
    assert rpc_tracing(settings) == []
    token = context.request_id.set("rid-1")
    try:
        with tracing.tracer().start_as_current_span("x"):
            assert context.message_options() == {"request_id": "rid-1"}  # no traceparent
    finally:
        context.request_id.reset(token)
    handle.shutdown()


def test_tracing_on_in_process_puts_the_traceparent_in_message_options() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from core.observability import context, tracing
    from core.settings import Settings

    exporter = InMemorySpanExporter()
    handle = tracing.setup(Settings(secret_key="x" * 32), "worker", exporter=exporter)  # type: ignore[arg-type]
    try:
        with tracing.tracer().start_as_current_span("publish") as span:
            options = context.message_options()
        ids = span.get_span_context()
        assert options == {"traceparent": f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}"}
        parent = tracing.extract(options)
        with tracing.tracer().start_as_current_span("deliver", context=parent) as child:
            assert child.get_span_context().trace_id == ids.trace_id
    finally:
        handle.shutdown()
    assert not tracing.enabled()
    assert [s.name for s in exporter.get_finished_spans()] == ["publish", "deliver"]
    assert [s.resource.attributes["service.name"] for s in exporter.get_finished_spans()] == ["postwire-worker"] * 2


def test_endpoint_setting() -> None:
    from pydantic import ValidationError

    from core.observability.tracing import traces_url
    from core.settings import Settings

    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://otlp.example.com/v1/traces") == "https://otlp.example.com/v1/traces"
    with pytest.raises(ValidationError):
        Settings(secret_key="x" * 32, otel_endpoint="collector:4318")  # type: ignore[arg-type]
    shown = Settings(secret_key="x" * 32, otel_endpoint="https://u:p@otlp.example.com").masked()  # type: ignore[arg-type]
    assert "u:p@" not in shown["POSTWIRE_OTEL_ENDPOINT"]


def test_worker_spans_reach_the_async_actor_through_the_event_loop_thread() -> None:
    """The middleware sets the span in the worker thread; the actor's coroutine, run on
    Dramatiq's event loop thread, must see it as its parent (stub broker, no services)."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import AsyncIO
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from core.delivery.queue import DELIVER_ACTOR
    from core.observability import tracing
    from core.settings import Settings
    from workers.tracing import MessageTracing

    exporter = InMemorySpanExporter()
    handle = tracing.setup(Settings(secret_key="x" * 32), "worker", exporter=exporter)  # type: ignore[arg-type]
    broker = StubBroker()
    broker.add_middleware(AsyncIO())
    broker.add_middleware(MessageTracing())
    seen: list[int] = []

    async def deliver_email(email_id: int) -> None:
        with tracing.tracer().start_as_current_span("smtp send"):
            seen.append(trace.get_current_span().get_span_context().trace_id)

    actor = dramatiq.actor(deliver_email, actor_name=DELIVER_ACTOR, broker=broker, queue_name="q", max_retries=0)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        with tracing.tracer().start_as_current_span("Send") as send:
            actor.send_with_options(args=(7,), **tracing.inject())
        broker.join("q", timeout=10_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
        handle.shutdown()
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert set(by_name) == {"Send", "deliver_email", "smtp send"}
    trace_id = send.get_span_context().trace_id
    assert seen == [trace_id]
    assert by_name["deliver_email"].parent.span_id == send.get_span_context().span_id  # type: ignore[union-attr]
    assert by_name["smtp send"].parent.span_id == by_name["deliver_email"].context.span_id  # type: ignore[union-attr]
    assert by_name["deliver_email"].attributes["postwire.email_id"] == 7
