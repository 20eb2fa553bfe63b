"""JSON over HTTP through a real Envoy to the real full stack."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import Stack
from tests.support.envoy import run_envoy


def test_send_status_and_ndjson_events_through_envoy(stack: Stack, tmp_path: Path) -> None:
    port = int(stack.address.rsplit(":", 1)[1])
    headers = {"x-api-key": stack.key_a}
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        sent = http.post(
            "/v1/emails",
            headers=headers,
            json={
                "from_address": "json@example.com",
                "to": ["Reader <reader@example.com>"],
                "subject": "Over JSON",
                "text_body": "Transcoded by Envoy",
                "tags": ["json"],
            },
        )
        assert sent.status_code == 200, sent.text
        message_id = sent.json()["message_id"]
        assert sent.json()["status"] == "EMAIL_STATUS_QUEUED"

        received = stack.recorder.wait_for(message_id)
        assert received.message["Subject"] == "Over JSON"

        deadline = time.monotonic() + 20
        while True:
            status = http.get(f"/v1/emails/{message_id}", headers=headers).json()
            if status["status"] == "EMAIL_STATUS_SENT" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status["status"] == "EMAIL_STATUS_SENT"
        assert [e["type"] for e in status["events"]] == [
            "EVENT_TYPE_QUEUED", "EVENT_TYPE_SENDING", "EVENT_TYPE_SENT",
        ]

        lines = []
        with http.stream("GET", "/v1/events", headers=headers, params={"message_ids": message_id}) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.strip():
                    lines.append(json.loads(line)["event"])
                if len(lines) == 3:
                    break
        assert [e["type"] for e in lines] == ["EVENT_TYPE_QUEUED", "EVENT_TYPE_SENDING", "EVENT_TYPE_SENT"]
        assert [e["cursor"] for e in lines] == [e["cursor"] for e in status["events"]]

        bad = http.post("/v1/emails", headers=headers, json={"from_address": "x", "to": ["y"]})
        assert bad.status_code == 400
        fields = {v["field"] for v in bad.json()["details"][0]["field_violations"]}
        assert {"from_address", "to[0]", "text_body"} <= fields

        assert http.get("/v1/emails/msg_nope", headers=headers).status_code == 404
        assert http.get(f"/v1/emails/{message_id}").status_code == 401


def test_attachments_scheduling_and_cancel_over_json(stack: Stack, tmp_path: Path) -> None:
    port = int(stack.address.rsplit(":", 1)[1])
    headers = {"x-api-key": stack.key_a}
    pdf = bytes(range(256))
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        sent = http.post(
            "/v1/emails",
            headers=headers,
            json={
                "from_address": "json@example.com",
                "to": ["files@example.com"],
                "subject": "With a file",
                "text_body": "attached",
                "attachments": [
                    {"filename": "data.bin", "content_type": "application/octet-stream",
                     "content": base64.b64encode(pdf).decode()}
                ],
                "idempotency_key": "json-attach-1",
            },
        )
        assert sent.status_code == 200, sent.text
        received = stack.recorder.wait_for(sent.json()["message_id"])
        assert next(received.message.iter_attachments()).get_content() == pdf

        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        scheduled = http.post(
            "/v1/emails", headers=headers,
            json={"from_address": "json@example.com", "to": ["later@example.com"], "text_body": "t", "send_at": later},
        ).json()
        assert scheduled["status"] == "EMAIL_STATUS_SCHEDULED"
        canceled = http.post(f"/v1/emails/{scheduled['message_id']}:cancel", headers=headers, json={})
        assert canceled.status_code == 200 and canceled.json()["status"] == "EMAIL_STATUS_CANCELED"
        again = http.post(f"/v1/emails/{scheduled['message_id']}:cancel", headers=headers, json={})
        assert again.status_code == 400  # FAILED_PRECONDITION
