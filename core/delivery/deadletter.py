"""Dead letters: a durable record, outside the delivery queue, of every email that
ended FAILED, with its reason and last SMTP reply, for operators to inspect or replay.

RabbitMQ: a durable queue `<queue_prefix>.dead-letter` of persistent JSON messages
(publisher confirms on). Embedded mode: lines in <data_dir>/dead-letters.jsonl.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pika

from core.settings import Settings

log = logging.getLogger(__name__)


def dead_letter_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.dead-letter"


class DeadLetters:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = dead_letter_queue(settings)

    def publish_sync(self, record: dict[str, Any]) -> None:
        body = json.dumps(record, sort_keys=True, default=str)
        if self.settings.broker_url.startswith("stub://"):
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            with open(self.settings.data_dir / "dead-letters.jsonl", "a") as out:
                out.write(body + "\n")
            return
        connection = pika.BlockingConnection(pika.URLParameters(self.settings.broker_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.queue_declare(self.queue, durable=True)
            channel.basic_publish(
                exchange="",
                routing_key=self.queue,
                body=body.encode(),
                properties=pika.BasicProperties(delivery_mode=2, content_type="application/json"),
            )
        finally:
            connection.close()

    async def publish(self, record: dict[str, Any]) -> None:
        """Best effort: the database already holds the FAILED status and its event."""
        try:
            await asyncio.to_thread(self.publish_sync, record)
        except Exception:
            log.exception("could not dead-letter email %s", record.get("message_id"))
