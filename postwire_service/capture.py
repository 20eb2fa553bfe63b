"""A local SMTP server (aiosmtpd) that saves each message as <message_id>.eml.

The embedded mode's relay: what would have gone to the internet lands in a folder.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class _SaveToFolder:
    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        message_id = str(parsed.get("Message-ID", "")).strip("<> ").split("@")[0]
        name = _SAFE.sub("_", message_id) or f"unnamed-{id(envelope)}"
        (self.outbox / f"{name}.eml").write_bytes(data)
        log.info("captured %s for %s", name, ", ".join(envelope.rcpt_tos))
        return "250 2.0.0 OK: saved"


class CaptureServer:
    def __init__(self, outbox: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
        outbox.mkdir(parents=True, exist_ok=True)
        self.controller = Controller(_SaveToFolder(outbox), hostname=host, port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
