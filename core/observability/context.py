"""What a log line knows about the work in hand: the request, the email, the account.

Context variables, so every log record written while serving one RPC or one queued
message carries them (core.observability.logs reads them). The server sets `request_id` per RPC
(server.request_id); the publisher carries it to the workers in the Dramatiq message
options (`message_options()`), where a middleware sets it again (workers.log_context).
With tracing on, the trace context rides along the same way (core.observability.tracing).
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from core.observability import tracing

request_id: ContextVar[str | None] = ContextVar("postwire_request_id", default=None)
message_id: ContextVar[str | None] = ContextVar("postwire_message_id", default=None)
account_id: ContextVar[int | None] = ContextVar("postwire_account_id", default=None)

# What a caller may send as x-request-id: an id, not text (it ends up in every log line).
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The caller's request id when it looks like one, else a new one."""
    if value and _SANE.fullmatch(value):
        return value
    return new_request_id()


def bind_email(message: str | None = None, account: int | None = None) -> None:
    """Name the email (and its account) that the current task works on."""
    if message is not None:
        message_id.set(message)
    if account is not None:
        account_id.set(account)


def clear() -> None:
    """Forget everything (a worker thread moving on to the next message)."""
    request_id.set(None)
    message_id.set(None)
    account_id.set(None)


def message_options() -> dict[str, str]:
    """What a queued message carries of the current context, for its Dramatiq options:
    {"request_id": ...} when serving a request, and the W3C "traceparent" of the current
    span when tracing is on (core.observability.tracing); else {}."""
    current = request_id.get()
    options = {"request_id": current} if current else {}
    options.update(tracing.inject())
    return options


def current() -> dict[str, object]:
    """The context values that are set, for a log line."""
    out: dict[str, object] = {}
    for name, var in (("request_id", request_id), ("message_id", message_id), ("account_id", account_id)):
        value = var.get()
        if value is not None:
            out[name] = value
    return out
