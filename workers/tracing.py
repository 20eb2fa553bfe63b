"""Worker spans, when tracing is on (core.observability.tracing; POSTWIRE_OTEL_ENDPOINT).

`MessageTracing`, a Dramatiq middleware, opens a span per queued message, named after
the actor (`deliver_email`, kind CONSUMER), as the child of the `traceparent` in the
message options: the server's RPC span that published it. A message without one (the
scheduler's retries and scheduled sends, published outside any request) starts a
trace of its own. Like workers.log_context, it sets the span in the worker thread
before the actor runs; Dramatiq's AsyncIO middleware starts the actor's coroutine from
that thread with a copy of its context, so the coroutine's spans are children of it.

`TracedDeliverer` adds what only the delivery knows to that span (the email's message
id, account, attempt number, outcome), and `TracedTransport` wraps each SMTP
transaction in a child span `smtp send` (kind CLIENT: relay, recipients, reply code).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from core.delivery.queue import DELIVER_ACTOR
from core.emails.model import ClaimedEmail
from core.emails.model import Status as EmailStatus
from core.observability import tracing
from workers.delivery.actor import Deliverer
from workers.delivery.classify import classify
from workers.delivery.smtp import TransactionResult
from workers.metrics import MeteredTransport

OUTCOME = "postwire.outcome"


class MessageTracing(Middleware):
    """A span around each message a worker thread processes."""

    def __init__(self) -> None:
        self._local = threading.local()  # a worker thread processes one message at a time

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._end(None)  # a span left over by a message whose end we never saw
        options = message.options
        attributes: dict[str, Any] = {
            "messaging.operation": "process",
            "messaging.destination.name": message.queue_name,
            "messaging.message.id": message.message_id,
            "messaging.dramatiq.retries": int(options.get("retries", 0) or 0),
        }
        request_id = options.get("request_id")
        if isinstance(request_id, str) and request_id:
            attributes["postwire.request_id"] = request_id
        if message.actor_name == DELIVER_ACTOR and message.args:
            attributes["postwire.email_id"] = message.args[0]
        span = tracing.tracer().start_span(
            message.actor_name, context=tracing.extract(options), kind=SpanKind.CONSUMER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self._local.current = (span, token)

    def after_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        self._end(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._end(None, skipped=True)

    def _end(self, exception: BaseException | None, skipped: bool = False) -> None:
        current = getattr(self._local, "current", None)
        if current is None:
            return
        self._local.current = None
        span, token = current
        otel_context.detach(token)
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
            span.set_attribute(OUTCOME, "error")  # raised: left to Dramatiq's retries
        elif skipped:
            span.set_attribute(OUTCOME, "skipped")
        span.end()


class TracedDeliverer(Deliverer):
    """The Deliverer, naming on the current (deliver_email) span the email it claimed,
    its attempt number and the status the attempt recorded."""

    async def deliver(self, email_id: int) -> EmailStatus | None:
        status = await super().deliver(email_id)
        # None: not claimable (done, deferred or held elsewhere), or put back for a
        # domain's concurrency limit.
        trace.get_current_span().set_attribute(OUTCOME, status.value if status is not None else "not_attempted")
        return status

    async def _attempt(self, claimed: ClaimedEmail, lease_end: datetime) -> EmailStatus | None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes({
                "postwire.message_id": claimed.message_id,
                "postwire.account_id": claimed.account_id,
                "postwire.attempt": claimed.attempts,
            })
        return await super()._attempt(claimed, lease_end)


class TracedTransport(MeteredTransport):
    """The (metered) SMTP transport, with a span per transaction."""

    async def send(
        self, sender: str, recipients: list[str], data: bytes, *, smtputf8: bool = False
    ) -> TransactionResult:
        with tracing.tracer().start_as_current_span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={
                "postwire.smtp.recipients": len(recipients),
                "postwire.smtp.relays": [pool.name for pool in self.pools],  # in the order tried
                "postwire.smtp.bytes": len(data),
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await super().send(sender, recipients, data, smtputf8=smtputf8)
            except BaseException as exc:
                _failed(span, exc)
                raise
            span.set_attributes({
                "postwire.smtp.relay": result.relay,
                "postwire.smtp.reply_code": result.data_code,
                "postwire.smtp.accepted": len(result.accepted),
                "postwire.smtp.refused": len(result.refused),
            })
            return result


def _failed(span: Span, exc: BaseException) -> None:
    """An SMTP transaction that raised: its reply code (none for a network fault)."""
    span.record_exception(exc)
    try:
        verdict = classify(exc)
    except TypeError:  # not an SMTP outcome (cancelled, a bug)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        return
    if verdict.code:
        span.set_attribute("postwire.smtp.reply_code", verdict.code)
    span.set_attribute("postwire.smtp.verdict", verdict.kind.value)
    span.set_status(Status(StatusCode.ERROR, f"{verdict.code} {verdict.message}" if verdict.code else verdict.message))
