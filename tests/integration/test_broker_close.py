"""Closing the broker at shutdown after RabbitMQ dropped an idle connection.

Dramatiq's broker keeps a connection per thread for declaring and publishing; nothing
pumps it between uses, so RabbitMQ closes it for missed heartbeats (Dramatiq #321).
Closing it at shutdown then made pika log a connection reset with a traceback, which is
no error at that moment: test_shutdown saw it in the worker log whenever the workers had
lived a few minutes. A one-second heartbeat makes the drop come in seconds here."""

from __future__ import annotations

import logging
import secrets
import time

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from core.delivery.queue import close_broker
from core.settings import Settings


def test_a_connection_rabbitmq_dropped_for_missed_heartbeats_closes_without_an_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = str(Settings.model_fields["broker_url"].default)  # the local RabbitMQ
    broker = RabbitmqBroker(url=url + ("&" if "?" in url else "?") + "heartbeat=1", confirm_delivery=True)
    queue = "test_close_" + secrets.token_hex(4)
    broker.declare_queue(queue, ensure=True)
    broker.channel.queue_delete(queue)
    time.sleep(5)  # two missed heartbeats: RabbitMQ drops the idle connection
    with caplog.at_level(logging.INFO):
        close_broker(broker)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text
