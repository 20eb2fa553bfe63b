"""The submission listener charges the send budget only for a message it goes on to
store: messages refused before (bad header, oversized, unverified From domain) spend
nothing, and once the budget is spent the reply is 451 4.7.0, at DATA and then at MAIL."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from core.emails.validation import SendLimits
from core.errors import FailedPrecondition
from core.keys.manager import Principal
from core.limits.local import LocalRateLimiter
from server.ratelimit import Defaults
from server.submission import SubmissionHandler

GOOD = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
BAD_HEADER = b"From: a@example.com\r\nSubject: one\r\nSubject: two\r\n\r\nhello\r\n"
UNVERIFIED = b"From: a@unverified.example\r\nSubject: hi\r\n\r\nhello\r\n"


class Senders:
    async def check(self, account_id: int, from_address: str) -> None:
        if from_address.endswith("@unverified.example"):
            raise FailedPrecondition("the From domain 'unverified.example' is not a verified sending domain")


class Service:
    def __init__(self) -> None:
        self.senders = Senders()
        self.stored = 0

    async def send(self, account_id: int, content: Any, options: Any) -> tuple[str, Any]:
        await self.senders.check(account_id, content.from_address.email)
        self.stored += 1
        return f"msg_{self.stored}", None


def _handler(service: Service, per_minute: int = 2) -> SubmissionHandler:
    return SubmissionHandler(None, LocalRateLimiter(), service, SendLimits(max_total_bytes=10_000),  # type: ignore[arg-type]
                             failures_per_minute=5, defaults=Defaults(per_minute, 100, 1000, 1000, 5))


SESSION = SimpleNamespace(peer=("127.0.0.1", 1), auth_data=Principal(1, "key_1", frozenset({"send"})))


def _data(handler: SubmissionHandler, raw: bytes) -> str:
    """One transaction: MAIL (accepted), then DATA's reply."""
    assert _mail(handler) == "250 2.1.0 OK"
    envelope = SimpleNamespace(original_content=raw, content=raw, mail_from="a@example.com",
                               rcpt_tos=["b@example.com"], smtp_utf8=False)
    return asyncio.run(handler.handle_DATA(None, SESSION, envelope))


def _mail(handler: SubmissionHandler) -> str:
    envelope = SimpleNamespace(mail_from=None, mail_options=[])
    return asyncio.run(handler.handle_MAIL(None, SESSION, envelope, "a@example.com", []))


def test_refused_messages_do_not_spend_the_send_budget() -> None:
    service = Service()
    handler = _handler(service, per_minute=2)
    assert _data(handler, BAD_HEADER).startswith("550 5.6.0")
    assert _data(handler, b"From: a@example.com\r\n\r\n" + b"x" * 20_000).startswith("552 5.3.4")  # oversized
    assert _data(handler, UNVERIFIED).startswith("550 5.7.1")
    assert _data(handler, GOOD) == "250 2.0.0 OK id=msg_1"
    assert _data(handler, GOOD) == "250 2.0.0 OK id=msg_2"  # the three refusals cost nothing
    assert service.stored == 2


def test_over_the_budget_answers_451_at_data_then_at_mail() -> None:
    service = Service()
    handler = _handler(service, per_minute=1)
    assert _data(handler, GOOD) == "250 2.0.0 OK id=msg_1"
    over = _data(handler, GOOD)
    assert over.startswith("451 4.7.0 Rate limit exceeded (1 messages per minute)") and "retry in" in over, over
    assert service.stored == 1  # nothing stored past the budget
    refused = _mail(handler)  # the client learns before sending the next message's DATA
    assert refused.startswith("451 4.7.0") and "retry in" in refused, refused


def test_without_rate_limits_nothing_is_charged() -> None:
    service = Service()
    handler = SubmissionHandler(None, LocalRateLimiter(), service, SendLimits(),  # type: ignore[arg-type]
                                failures_per_minute=5, defaults=None)
    for _ in range(5):
        assert _data(handler, GOOD).startswith("250 2.0.0")
