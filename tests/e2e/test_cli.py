"""The `postwire` client commands as a user runs them, against the real stack: bodies from
files and stdin, attachments, --count and --batch with progress, readable and JSON
status and events, errors."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from postwire.v1 import email_pb2
from tests.conftest import Stack
from tests.e2e.test_full_stack import wait_status
from tests.support.processes import POSTWIRE, REPO, base_env

ID = re.compile(r"^msg_\w+$")
SENT = email_pb2.EMAIL_STATUS_SENT
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  (\w+) +(msg_\w+)  (\S+)  (\S+)")


def cli(stack: Stack, *args: str, stdin: str | None = None, ok: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [POSTWIRE, *args], input=stdin, env=base_env(address=stack.address, api_key=stack.key_a), cwd=REPO,
        capture_output=True, text=True, timeout=timeout,
    )
    if ok:
        assert result.returncode == 0, f"postwire {args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_send_reads_bodies_from_files_and_stdin_and_attaches_files(stack: Stack, tmp_path: Path) -> None:
    html = tmp_path / "body.html"
    html.write_text("<h1>Report</h1><img src=\"cid:logo\">")
    pdf, logo = tmp_path / "report.pdf", tmp_path / "logo.png"
    pdf.write_bytes(b"%PDF-1.4 report")
    logo.write_bytes(b"\x89PNG\r\n\x1a\n")
    out = cli(stack, "send", "--from", "a@example.com", "--to", "cli-files@cli.example.com", "--subject", "files",
              "--html-file", str(html), "--text-file", "-", "--attach", str(pdf), "--inline", f"{logo}:logo",
              stdin="plain text from stdin\n").stdout
    message_id = out.strip()
    assert ID.match(message_id)
    message = stack.recorder.wait_for(message_id).message
    assert message.get_body(("html",)).get_content().startswith("<h1>Report</h1>")
    assert message.get_body(("plain",)).get_content().strip() == "plain text from stdin"
    parts = {p.get_filename(): p for p in message.walk() if p.get_filename()}
    assert parts["report.pdf"].get_content_type() == "application/pdf"
    assert parts["report.pdf"].get_content() == b"%PDF-1.4 report"
    assert parts["logo.png"].get_content_type() == "image/png" and parts["logo.png"]["Content-ID"] == "<logo>"


def test_send_count_sends_n_emails_and_reports_progress_with_rate(stack: Stack) -> None:
    tag = f"count-{secrets.token_hex(3)}"
    result = cli(stack, "send", "--from", "a@example.com", "--to", "count@cli.example.com", "--subject", "n",
                 "--text", "x", "--tag", tag, "--count", "12", "--concurrency", "4")
    ids = result.stdout.split()
    assert len(ids) == 12 and len(set(ids)) == 12 and all(ID.match(i) for i in ids)
    summary = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"done: 12 sent, 0 failed of 12 in \d+\.\d s \(\d+\.\d/s\)", summary), result.stderr


def test_send_batch_sends_one_email_per_line_and_reports_failures_in_place(stack: Stack, tmp_path: Path) -> None:
    batch = tmp_path / "batch.ndjson"
    batch.write_text("\n".join([
        "batch-1@cli.example.com",
        json.dumps({"to": ["batch-2@cli.example.com"], "subject": "own subject", "metadata": {"n": "2"}}),
        "",
        json.dumps({"to": ["not an address"]}),
        "batch-4@cli.example.com",
    ]) + "\n")
    result = cli(stack, "send", "--from", "a@example.com", "--subject", "batch", "--text", "x",
                 "--batch", str(batch), "--idempotency-key", f"batch-{secrets.token_hex(3)}", ok=False)
    assert result.returncode == 1
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 4 and lines[2] == "" and all(ID.match(lines[i]) for i in (0, 1, 3))
    assert "request 3: INVALID_ARGUMENT" in result.stderr and "to[0]" in result.stderr
    assert "done: 3 sent, 1 failed of 4" in result.stderr
    with stack.client() as client:
        assert client.get_status(lines[1]).recipients[0].address == "batch-2@cli.example.com"
    assert stack.recorder.wait_for(lines[1]).message["Subject"] == "own subject"
    assert stack.recorder.wait_for(lines[3]).message["Subject"] == "batch"


def test_a_batch_with_a_bad_key_stops_at_the_first_answer(stack: Stack) -> None:
    result = subprocess.run(
        [POSTWIRE, "send", "--from", "a@example.com", "--text", "x", "--batch", "-", "--concurrency", "1"],
        input="\n".join(f"n{i}@cli.example.com" for i in range(50)), capture_output=True, text=True, timeout=60,
        env=base_env(address=stack.address, api_key="pw_live_nosuchkeynosuchkey"), cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stderr.count("UNAUTHENTICATED") == 2  # the failed request, then why the run stopped
    assert "error: stopped after UNAUTHENTICATED; 49 requests not sent" in result.stderr


def test_status_is_readable_by_default_and_json_with_a_flag(stack: Stack) -> None:
    message_id = cli(stack, "send", "--from", "a@example.com", "--to", "status-cli@cli.example.com", "--text",
                     "x").stdout.strip()
    with stack.client() as client:
        wait_status(client, message_id, {SENT})
    text = cli(stack, "status", message_id).stdout
    assert text.splitlines()[0] == f"{message_id}  SENT  attempts 1"
    assert "  status-cli@cli.example.com  SENT  250" in text
    assert [LINE.match(line.strip()).group(1) for line in text.split("events:\n")[1].splitlines()] == [
        "QUEUED", "SENDING", "SENT"]
    as_json = json.loads(cli(stack, "status", message_id, "--json").stdout)
    assert as_json["message_id"] == message_id and as_json["status"] == "EMAIL_STATUS_SENT"


def test_events_print_one_readable_line_each_or_ndjson_with_json(stack: Stack) -> None:
    message_id = cli(stack, "send", "--from", "a@example.com", "--to", "events-cli@cli.example.com", "--text",
                     "x").stdout.strip()
    with stack.client() as client:
        wait_status(client, message_id, {SENT})
    lines = cli(stack, "events", "--message-id", message_id, "--idle-timeout", "1").stdout.splitlines()
    parsed = [LINE.match(line).groups() for line in lines]
    assert parsed == [("QUEUED", message_id, "-", "-"), ("SENDING", message_id, "-", "-"),
                      ("SENT", message_id, "events-cli@cli.example.com", "250")]
    out = cli(stack, "events", "--json", "--message-id", message_id, "--idle-timeout", "1").stdout
    ndjson = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in ndjson] == ["EVENT_TYPE_QUEUED", "EVENT_TYPE_SENDING", "EVENT_TYPE_SENT"]
    assert all(e["message_id"] == message_id and e["cursor"] for e in ndjson)
    sent_only = cli(stack, "events", "--json", "--message-id", message_id, "--type", "sent",
                    "--idle-timeout", "1").stdout.splitlines()
    assert [json.loads(line)["type"] for line in sent_only] == ["EVENT_TYPE_SENT"]


@pytest.mark.parametrize("as_json", [False, True])
def test_events_follow_prints_live_events_as_they_happen(stack: Stack, as_json: bool) -> None:
    tag = f"follow-cli-{secrets.token_hex(3)}"
    follow = subprocess.Popen(
        [POSTWIRE, "events", "--follow", "--tag", tag, *(["--json"] if as_json else [])],
        env=base_env(address=stack.address, api_key=stack.key_a), cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)
        message_id = cli(stack, "send", "--from", "a@example.com", "--to", "follow-cli@cli.example.com", "--text", "x",
                         "--tag", tag).stdout.strip()
        assert follow.stdout is not None
        lines = [follow.stdout.readline().strip() for _ in range(3)]
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    if as_json:
        assert [(json.loads(line)["type"], json.loads(line)["message_id"]) for line in lines] == [
            ("EVENT_TYPE_QUEUED", message_id), ("EVENT_TYPE_SENDING", message_id), ("EVENT_TYPE_SENT", message_id)]
    else:
        assert [LINE.match(line).group(1, 2) for line in lines] == [
            ("QUEUED", message_id), ("SENDING", message_id), ("SENT", message_id)]


def test_invalid_send_exits_1_listing_each_field_violation(stack: Stack) -> None:
    result = cli(stack, "send", "--from", "not-an-address", "--to", "b@cli.example.com", ok=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: INVALID_ARGUMENT: ")
    assert "  from_address: " in result.stderr and "  text_body: " in result.stderr
