"""The CLI's pure parts: batch lines to requests, readable event and status lines,
progress reporting, attachment specs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import email_pb2, email_service_pb2, event_pb2
from postwire_client.batch import batch_requests
from postwire_client.cli import build_parser
from postwire_client.formatting import event_line, status_text
from postwire_client.progress import Progress
from postwire_client.send_flags import _attachment, base_request

BASE = email_service_pb2.SendRequest(from_address="a@example.com", to=["default@example.com"], subject="s",
                                     text_body="t", tags=["base"])


def test_a_bare_address_line_replaces_the_recipients() -> None:
    [request] = batch_requests(BASE, ["x@example.com"], "")
    assert list(request.to) == ["x@example.com"] and request.subject == "s" and list(request.tags) == ["base"]


def test_a_json_line_overrides_only_the_fields_it_names() -> None:
    [request] = batch_requests(BASE, ['{"to": ["y@example.com"], "subject": "hi", "metadata": {"order": "7"}}'], "")
    assert list(request.to) == ["y@example.com"] and request.subject == "hi"
    assert request.text_body == "t" and list(request.tags) == ["base"] and dict(request.metadata) == {"order": "7"}


def test_json_lines_take_proto_json_names_too() -> None:
    [request] = batch_requests(BASE, ['{"fromAddress": "b@example.com", "tags": ["x"]}'], "")
    assert request.from_address == "b@example.com" and list(request.tags) == ["x"]


def test_blank_lines_are_skipped_and_keys_numbered_per_request() -> None:
    requests = batch_requests(BASE, ["one@example.com", "", "  ", '{"idempotency_key": "mine"}', "two@example.com"],
                              "run7")
    assert [r.idempotency_key for r in requests] == ["run7-1", "mine", "run7-3"]


def test_without_a_key_batch_requests_leave_it_to_the_client() -> None:
    assert [r.idempotency_key for r in batch_requests(BASE, ["a@example.com"], "")] == [""]


def test_a_broken_json_line_names_its_line_number() -> None:
    with pytest.raises(SystemExit, match="line 2"):
        batch_requests(BASE, ["a@example.com", '{"to": '], "")
    with pytest.raises(SystemExit, match="line 1"):
        batch_requests(BASE, ['{"no_such_field": 1}'], "")


def stamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def test_an_event_is_one_readable_line_with_time_type_id_recipient_and_code() -> None:
    event = event_pb2.Event(cursor="c1", message_id="msg_1", type=event_pb2.EVENT_TYPE_SENT,
                            occurred_at=stamp(1_800_000_000, 123_456_000), smtp_code=250, recipient="b@example.com",
                            smtp_message="2.0.0 Ok:\nqueued")
    assert event_line(event) == "2027-01-15T08:00:00.123Z  SENT        msg_1  b@example.com  250  2.0.0 Ok: queued"


def test_an_event_without_recipient_or_code_shows_dashes() -> None:
    event = event_pb2.Event(message_id="msg_1", type=event_pb2.EVENT_TYPE_QUEUED, occurred_at=stamp(1_800_000_000))
    assert event_line(event) == "2027-01-15T08:00:00.000Z  QUEUED      msg_1  -  -"


def test_status_text_lists_times_recipients_and_events() -> None:
    status = email_service_pb2.GetStatusResponse(
        message_id="msg_1", status=email_pb2.EMAIL_STATUS_SENT, attempts=1, created_at=stamp(1_800_000_000),
        sent_at=stamp(1_800_000_001),
        recipients=[email_pb2.RecipientStatus(address="b@example.com", status=email_pb2.EMAIL_STATUS_SENT,
                                              smtp_code=250, smtp_message="Ok")],
        events=[event_pb2.Event(message_id="msg_1", type=event_pb2.EVENT_TYPE_QUEUED,
                                occurred_at=stamp(1_800_000_000))],
    )
    text = status_text(status)
    assert text.splitlines()[0] == "msg_1  SENT  attempts 1"
    assert "  sent:         2027-01-15T08:00:01.000Z" in text and "send at" not in text
    assert "  b@example.com  SENT  250 Ok" in text
    assert text.splitlines()[-1].startswith("  2027-01-15T08:00:00.000Z  QUEUED") and "template" not in text
    status.template_id, status.template_version, status.template_variant = "tpl_1", 3, "bold"
    assert "  template:     tpl_1 version 3 variant bold" in status_text(status)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_reports_count_rate_failures_and_eta_then_a_summary() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(100, out, interval=2.0, clock=clock)
    for i in range(20):
        clock.now += 0.25
        progress.advance(ok=i % 10 != 0)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "sent 8/100 (8%)  4.0/s  1 failed  eta 23s"  # the first line after 2 s
    assert len(lines) == 2 + 1  # every 2 s, then the summary
    assert lines[-1] == "done: 18 sent, 2 failed of 100 in 5.0 s (4.0/s)"


def test_progress_on_a_terminal_redraws_one_line() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, clock = Tty(), Clock()
    progress = Progress(3, out, clock=clock)
    for _ in range(3):
        clock.now += 0.5
        progress.advance(ok=True)
    progress.finish()
    assert out.getvalue().count("\r\x1b[K") == 4 and out.getvalue().endswith("(2.0/s)\n")


def test_progress_can_be_silenced() -> None:
    out = io.StringIO()
    progress = Progress(2, out, enabled=False)
    progress.advance(ok=True)
    progress.finish()
    assert out.getvalue() == ""


def test_attach_guesses_the_content_type_and_takes_an_existing_path_whole(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    odd = tmp_path / "a:b.txt"
    odd.write_text("colon")
    assert (_attachment(str(pdf), False).content_type, _attachment(str(pdf), False).filename) == (
        "application/pdf", "report.pdf")
    assert _attachment(f"{pdf}:application/x-custom", False).content_type == "application/x-custom"
    assert _attachment(str(odd), False).content == b"colon"
    inline = _attachment(f"{pdf}:logo", True)
    assert inline.content_id == "logo" and inline.content_type == "application/pdf"
    with pytest.raises(SystemExit, match="no such file"):
        _attachment(str(tmp_path / "missing.pdf"), False)


def test_bodies_come_from_files_or_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    html = tmp_path / "body.html"
    html.write_text("<p>hi</p>")
    monkeypatch.setattr("sys.stdin", io.StringIO("plain from stdin"))
    args = build_parser().parse_args(["send", "--from", "a@example.com", "--to", "b@example.com",
                                      "--html-file", str(html), "--text-file", "-"])
    request = base_request(args)
    assert request.html_body == "<p>hi</p>" and request.text_body == "plain from stdin"


def test_two_readers_of_stdin_or_two_sources_of_a_body_are_refused(tmp_path: Path) -> None:
    both = build_parser().parse_args(["send", "--from", "a@x.io", "--html-file", "-", "--batch", "-"])
    with pytest.raises(SystemExit, match="stdin"):
        base_request(both)
    twice = build_parser().parse_args(["send", "--from", "a@x.io", "--text", "x", "--text-file", "f"])
    with pytest.raises(SystemExit, match="not both"):
        base_request(twice)


def test_unsubscribe_flags_set_the_send_option_and_its_absence_leaves_the_account_default() -> None:
    def request(*flags: str) -> object:
        return base_request(build_parser().parse_args(["send", "--from", "a@example.com", "--to", "b@example.com", *flags]))

    assert request("--unsubscribe").unsubscribe is True  # type: ignore[attr-defined]
    off = request("--no-unsubscribe")
    assert off.HasField("unsubscribe") and off.unsubscribe is False  # type: ignore[attr-defined]
    assert not request().HasField("unsubscribe")  # type: ignore[attr-defined]
