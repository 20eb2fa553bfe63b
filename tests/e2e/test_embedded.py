"""End to end on the embedded default (`postwire dev`): one process, no servers."""

from __future__ import annotations

import email
import email.policy
import signal
import time
from pathlib import Path

from postwire.v1 import email_pb2, event_pb2
from postwire_client import Client
from tests.support.ports import free_port
from tests.support.processes import Process, base_env, wait_serving

E = event_pb2


def test_dev_mode_delivers_to_the_outbox_and_reports_sent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    grpc_port, smtp_port = free_port(), free_port()
    env = base_env(grpc_port=str(grpc_port), smtp_port=str(smtp_port))
    dev = Process(["dev", "--no-envoy", "--data-dir", str(data_dir)], env, tmp_path / "dev.log")
    try:
        address = f"127.0.0.1:{grpc_port}"
        wait_serving(address, dev)
        key = (data_dir / "dev-api-key").read_text().strip()
        assert key.startswith("pw_live_") and key in dev.log()

        with Client(address, key) as client:
            message_id = client.send(
                from_address="a@example.com", to=["b@example.com"], bcc=["c@example.com"],
                subject="hi", text_body="hello",
            ).message_id
            eml = data_dir / "outbox" / f"{message_id}.eml"
            deadline = time.monotonic() + 15
            while not eml.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            assert message["Subject"] == "hi" and message["To"] == "b@example.com"
            assert "Bcc" not in message
            assert message.get_content().strip() == "hello"

            deadline = time.monotonic() + 10
            while (status := client.get_status(message_id)).status != email_pb2.EMAIL_STATUS_SENT:
                assert time.monotonic() < deadline, status
                time.sleep(0.05)
            # One SENT event per recipient (the Bcc one too).
            assert [(e.type, e.recipient) for e in status.events] == [
                (E.EVENT_TYPE_QUEUED, ""), (E.EVENT_TYPE_SENDING, ""),
                (E.EVENT_TYPE_SENT, "b@example.com"), (E.EVENT_TYPE_SENT, "c@example.com"),
            ]

            events = list(client.stream_events(after=status.events[0].cursor, idle_timeout=1.0))
            assert [e.type for e in events] == [E.EVENT_TYPE_SENDING, E.EVENT_TYPE_SENT, E.EVENT_TYPE_SENT]

            # The in-process scheduler's stats rollup counts them on SQLite too.
            deadline = time.monotonic() + 10
            while (totals := client.get_stats().totals).delivered < 2:
                assert time.monotonic() < deadline, totals
                time.sleep(0.1)
            assert (totals.sent, totals.delivered) == (1, 2)
    finally:
        dev.proc.send_signal(signal.SIGINT)
        assert dev.proc.wait(timeout=20) == 0, dev.log()
        dev.stop()
