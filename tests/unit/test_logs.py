"""Log lines (core/observability/logs.py) and the request context they carry (core/observability/context.py)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys

import pytest

from core.observability import context
from core.observability.logs import JsonFormatter, TextFormatter, formatter, redact


def record(message: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("postwire.test", logging.WARNING, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def in_context(fn, **values: object):  # type: ignore[no-untyped-def]
    """Run fn in a fresh context with these context variables set."""

    def run():  # type: ignore[no-untyped-def]
        for name, value in values.items():
            getattr(context, name).set(value)
        return fn()

    return contextvars.Context().run(run)


def test_json_line_has_time_level_logger_and_message() -> None:
    line = json.loads(in_context(lambda: JsonFormatter().format(record())))
    assert line["level"] == "WARNING" and line["logger"] == "postwire.test" and line["message"] == "hello world"
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert "request_id" not in line and "message_id" not in line and "account_id" not in line


def test_json_line_carries_the_request_message_and_account_ids_when_known() -> None:
    text = in_context(lambda: JsonFormatter().format(record()), request_id="req-1", message_id="msg_abc", account_id=7)
    line = json.loads(text)
    assert (line["request_id"], line["message_id"], line["account_id"]) == ("req-1", "msg_abc", 7)


def test_json_line_keeps_extra_fields_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record(code="OK", duration_ms=1.5)
        rec.exc_info = sys.exc_info()
    line = json.loads(in_context(lambda: JsonFormatter().format(rec)))
    assert line["code"] == "OK" and line["duration_ms"] == 1.5
    assert "ValueError: boom" in line["exception"]


def test_text_line_appends_the_context_before_any_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record()
        rec.exc_info = sys.exc_info()
    text = in_context(lambda: TextFormatter().format(rec), request_id="req-9")
    first, _, rest = text.partition("\n")
    assert first.endswith("postwire.test: hello world [request_id=req-9]")
    assert "ValueError: boom" in rest
    assert in_context(lambda: TextFormatter().format(record())).endswith("hello world")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_api_keys_are_cut_to_their_public_prefix_in_every_format(fmt: str) -> None:
    key = "pw_live_ABCDEFGHijklmnopqrstuvwxyz0123456789abcd"
    text = in_context(lambda: formatter(fmt).format(record("key %s refused", (key,))))
    assert key not in text and "pw_live_ABCDEFGH…" in text


def test_redact_leaves_other_text_alone() -> None:
    assert redact("pw_ alone, pw_live_short") == "pw_ alone, pw_live_short"


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        formatter("xml")


@pytest.mark.parametrize("incoming", ["abc-123", "9f0c2d1e-5b6a-4c3d-8e7f-001122334455", "req.1:2/3"])
def test_a_sane_incoming_request_id_is_kept(incoming: str) -> None:
    assert context.accept_request_id(incoming) == incoming


@pytest.mark.parametrize("incoming", ["", None, "has space", "x" * 200, "new\nline", "-leading-dash", "é"])
def test_an_insane_or_missing_request_id_is_replaced(incoming: str | None) -> None:
    made = context.accept_request_id(incoming)
    assert made != incoming and len(made) == 32 and made.isalnum()


def test_message_options_carry_the_request_id_only_when_set() -> None:
    assert in_context(context.message_options) == {}
    assert in_context(context.message_options, request_id="r1", message_id="msg_1") == {"request_id": "r1"}
