"""The parse actor for inbound reports, registered on the webhooks queue
(`<queue_prefix>.webhooks`) so the workers consume no extra queue: each message carries
one `inbound_reports` id (core/returns/inbound.py), and the actor is safe to run twice."""

from __future__ import annotations

import dramatiq

from core.delivery.queue import webhook_queue
from core.returns.inbound import INBOUND_ACTOR, InboundStore
from core.returns.outcomes import Outcomes
from core.returns.reports import ReportProcessor
from core.settings import Settings
from core.storage.db import make_engine
from workers.metrics import INBOUND_REPORTS


def register_feedback_actors(settings: Settings, broker: dramatiq.Broker) -> None:
    """Register the actor; its engine is built lazily in the event loop Dramatiq runs
    async actors on."""
    queue = webhook_queue(settings)
    broker.declare_queue(queue)
    processor: list[ReportProcessor] = []

    def get() -> ReportProcessor:
        if not processor:
            engine = make_engine(settings.database_url)
            processor.append(ReportProcessor(InboundStore.from_settings(engine, settings), Outcomes(engine)))
        return processor[0]

    async def parse_inbound_report(report_id: int) -> None:
        # A database outage raises: Dramatiq retries, and the scheduler republishes a
        # report still `received` after POSTWIRE_REPUBLISH_AFTER_SECONDS.
        state = await get().process(report_id)
        if state is not None:
            INBOUND_REPORTS.labels(state).inc()

    dramatiq.actor(
        parse_inbound_report,
        actor_name=INBOUND_ACTOR,
        queue_name=queue,
        broker=broker,
        max_retries=settings.max_retries,
        min_backoff=1_000,
        max_backoff=60_000,
    )
