"""Optional OpenTelemetry tracing, off unless `Settings.otel_endpoint` names a collector.

One trace follows an email from the RPC that accepted it to the SMTP transaction that
delivered it: the server opens a span per RPC (server.tracing), the publisher puts the
W3C `traceparent` of the current span into the delivery message's options next to the
request id (`inject()`, called by core.observability.context.message_options), and the worker
continues the trace from there (workers.tracing).

Off, nothing is set up: `tracer()` is the OpenTelemetry API's no-op tracer, `inject()`
returns {} at once, and the server and workers leave their tracing layers out. On, each
process (`setup()`) exports its spans in batches over OTLP/HTTP (protobuf) as
`<otel_service_name>-server`, `-worker` or `-scheduler`. The SDK's own environment
variables still apply: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (sampling),
OTEL_BSP_* (batching), OTEL_EXPORTER_OTLP_TRACES_HEADERS / _TIMEOUT / _CERTIFICATE /
_COMPRESSION (the exporter), OTEL_RESOURCE_ATTRIBUTES (more resource attributes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from core.settings import Settings

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
# W3C trace context only (traceparent, tracestate), whatever OTEL_PROPAGATORS says: that
# is what the gRPC metadata and the queued messages carry.
PROPAGATOR = TraceContextTextMapPropagator()
FIELDS = frozenset(PROPAGATOR.fields)

SHUTDOWN_SECONDS = 3.0

_NOOP: trace.Tracer = trace.NoOpTracer()
_tracer: trace.Tracer = _NOOP
_provider: TracerProvider | None = None


def enabled() -> bool:
    """Whether this process exports spans."""
    return _provider is not None


def tracer() -> trace.Tracer:
    """Postwire's tracer: the process's provider when tracing is on, else a no-op."""
    return _tracer


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: `endpoint` as given, or with /v1/traces when it has no path."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path=TRACES_PATH))
    return endpoint


def inject() -> dict[str, str]:
    """The W3C trace context of the current span ({"traceparent": ...}, and "tracestate"
    when there is one), for a queued message's options; {} when tracing is off or no
    span is current."""
    if _provider is None:
        return {}
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, object]) -> Context:
    """The parent context that a `traceparent` in `carrier` (message options, request
    metadata) names; an empty context when there is none or it is malformed."""
    fields = {k: v for k, v in carrier.items() if k in FIELDS and isinstance(v, str)}
    return PROPAGATOR.extract(fields, context=Context())


class Tracing:
    """What `setup()` started. `shutdown()` exports the spans still waiting and stops."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider

    def shutdown(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Export what is left, waiting at most `timeout` seconds: a collector that is
        down (the exporter retries for OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, 10 s) must not
        hold up a process that is stopping."""
        global _provider, _tracer
        provider, self.provider = self.provider, None
        if provider is None:
            return
        if _provider is provider:
            _provider, _tracer = None, _NOOP
        flushing = threading.Thread(target=provider.shutdown, name="postwire-tracing-shutdown", daemon=True)
        flushing.start()
        flushing.join(timeout)
        if flushing.is_alive():
            log.warning("tracing: the last spans were not exported within %.0f s of stopping; dropped", timeout)


def setup(settings: Settings, process: str, exporter: SpanExporter | None = None) -> Tracing:
    """Start exporting this process's spans when `settings.otel_endpoint` is set (or an
    `exporter` is given, for tests); otherwise a handle that does nothing.

    One provider per process: when tracing is already on (the embedded mode runs the
    server and the workers in one process) the handle returned does nothing and the
    first one's owner shuts it down.
    """
    global _provider, _tracer
    if not settings.otel_endpoint and exporter is None:
        return Tracing()
    if _provider is not None:
        return Tracing()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint))
    service = f"{settings.otel_service_name}-{process}"
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; the attributes given here win.
    resource = Resource.create({"service.name": service, "service.version": _version()})
    # Sampler: OTEL_TRACES_SAMPLER, else parent-based always-on. Shut down by our owner
    # (bounded), not at exit, where a collector that is down would hold the exit up.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("postwire", _version())
    if settings.otel_endpoint:
        from core.settings import mask_url

        log.info("tracing on: spans of %s go to %s", service, mask_url(traces_url(settings.otel_endpoint)))
    return Tracing(provider)


def _version() -> str:
    try:
        return metadata.version("postwire")
    except metadata.PackageNotFoundError:
        return "unknown"
