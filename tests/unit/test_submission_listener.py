"""The submission listener's decisions without sockets: which SMTP reply a refused
message gets, and failed logins limited per client address."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.emails.validation import SendLimits
from core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
)
from core.keys.manager import Principal
from core.limits.local import LocalRateLimiter
from server.submission import SubmissionHandler, invalid_reply, tls_context
from server.submission_auth import SubmissionAuth

GOOD = "pw_live_good-key-good-key-good-key"


class Keys:
    def __init__(self) -> None:
        self.lookups = 0

    async def authenticate(self, key: str) -> Principal:
        self.lookups += 1
        if key != GOOD:
            raise Unauthenticated()
        return Principal(account_id=1, key_id="key_1", scopes=frozenset({"send"}))


def _server(address: str) -> Any:
    return SimpleNamespace(session=SimpleNamespace(peer=(address, 40000)))


def test_replies_by_violation() -> None:
    def reply(*fields: str) -> str:
        return invalid_reply(InvalidArgument([FieldViolation(f, "bad") for f in fields]))

    assert reply("size").startswith("552 5.3.4")
    assert reply("header:Subject", "size").startswith("552 5.3.4")
    assert reply("from").startswith("553 5.1.3")
    assert reply("rcpt[1]").startswith("553 5.1.3")
    assert reply("header:Subject").startswith("550 5.6.0")
    assert reply("body").startswith("550 5.6.0")
    assert "\n" not in invalid_reply(InvalidArgument([FieldViolation("header", "line\r\nbreak")]))


async def test_failed_logins_are_limited_per_client_address() -> None:
    keys = Keys()
    auth = SubmissionAuth(keys, LocalRateLimiter(), failures_per_minute=3)  # type: ignore[arg-type]
    for _ in range(4):
        result = await auth.check_key(_server("192.0.2.1"), b"pw_live_wrong-wrong-wrong-wrong")
        assert not result.success and result.message.startswith("535 5.7.8")
    assert keys.lookups == 4
    blocked = await auth.check_key(_server("192.0.2.1"), GOOD.encode())  # even the right key, for a while
    assert not blocked.success and blocked.message.startswith("454 4.7.0")
    assert keys.lookups == 4  # not looked up
    other = await auth.check_key(_server("192.0.2.2"), GOOD.encode())  # another address is not affected
    assert other.success and other.auth_data.key_id == "key_1"


class Service:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    async def send(self, account_id: int, content: Any, options: Any) -> tuple[str, Any]:
        if self.error is not None:
            raise self.error
        assert options.idempotency_key and options.test is False
        return "msg_stored", None


def _data_reply(error: Exception | None) -> str:
    handler = SubmissionHandler(Keys(), LocalRateLimiter(), Service(error), SendLimits(),  # type: ignore[arg-type]
                                failures_per_minute=5, defaults=None)
    session = SimpleNamespace(peer=("127.0.0.1", 1), auth_data=Principal(1, "key_1", frozenset({"send"})))
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    envelope = SimpleNamespace(original_content=raw, content=raw, mail_from="a@example.com",
                               rcpt_tos=["b@example.com"], smtp_utf8=False)
    return asyncio.run(handler.handle_DATA(None, session, envelope))


def test_data_replies_by_outcome() -> None:
    assert _data_reply(None) == "250 2.0.0 OK id=msg_stored"
    refused = _data_reply(FailedPrecondition("the From domain 'example.com' is not a verified sending domain"))
    assert refused.startswith("550 5.7.1") and "example.com" in refused
    assert _data_reply(Unavailable("database unavailable")).startswith("451 4.3.0")
    crashed = _data_reply(RuntimeError("secret detail"))
    assert crashed.startswith("451 4.3.0") and "secret" not in crashed  # never a traceback to the client


def test_a_certificate_that_cannot_be_loaded_names_the_files_and_the_settings(tmp_path: Path) -> None:
    missing, broken = tmp_path / "missing.pem", tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    for path in (missing, broken):
        with pytest.raises(OSError, match="POSTWIRE_SUBMISSION_TLS_CERT") as raised:
            tls_context(str(path), str(path))
        assert str(path) in str(raised.value)
