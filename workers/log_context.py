"""Worker log lines carry the request id of the RPC that queued their message.

The publisher puts `core.observability.context.message_options()` ({"request_id": ...}) into each
Dramatiq message's options. This middleware sets it again in the worker thread before
the actor runs; Dramatiq's AsyncIO middleware starts the actor's coroutine from that
thread, so the coroutine (and everything it logs) sees it too. The delivery code adds
the message and account ids once it has claimed the email (core.observability.context.bind_email).
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from core.observability import context


class LogContext(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        context.clear()
        request_id = message.options.get("request_id")
        if isinstance(request_id, str) and request_id:
            context.request_id.set(context.accept_request_id(request_id))

    def after_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        context.clear()

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        context.clear()
