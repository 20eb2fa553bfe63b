"""One webhook attempt as guard steps: claim → check the endpoint is enabled → sign →
POST → classify → record (attempt, delivery state, endpoint health).

Safe to run twice for the same id: the claim is atomic. Never logs secrets or bodies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import httpx

from core.times import utcnow
from core.webhooks.delivery_store import ClaimedDelivery, WebhookDeliveryStore
from core.webhooks.signing import SecretBox, webhook_headers
from core.webhooks.store import ENABLED
from workers.metrics import webhook_attempt
from workers.webhooks.outcome import WebhookRetryPolicy, classify, decide

log = logging.getLogger(__name__)


class WebhookSender:
    def __init__(self, store: WebhookDeliveryStore, client: httpx.AsyncClient, box: SecretBox,
                 policy: WebhookRetryPolicy, timeout: float) -> None:
        self.store = store
        self.client = client
        self.box = box
        self.policy = policy
        self.timeout = timeout

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout + 30)

    async def deliver(self, delivery_id: int) -> str | None:
        """Attempt the delivery; returns the recorded attempt outcome (None: nothing done)."""
        claimed = await self.store.claim(delivery_id, self.lease)
        if claimed is None:
            log.info("webhook delivery %s not claimable (done, not due or held elsewhere)", delivery_id)
            return None
        try:
            return await self._attempt(claimed)
        except Exception:
            await self.store.release(claimed, self.policy.min_backoff)
            raise

    async def _attempt(self, claimed: ClaimedDelivery) -> str:
        if claimed.endpoint_state != ENABLED:
            await self.store.fail(claimed.id, "endpoint disabled; not sent")
            return "failed"
        secrets = [self.box.open(s, claimed.endpoint_public_id) for s in claimed.sealed_secrets]
        headers = webhook_headers(secrets, claimed.webhook_id, int(time.time()), claimed.body)
        status_code, retry_after, error = None, None, ""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.post(claimed.url, content=claimed.body.encode(), headers=headers)
            status_code, retry_after = response.status_code, response.headers.get("retry-after")
        except (TimeoutError, httpx.TimeoutException):
            error = f"timed out after {self.timeout:g} s"
        except httpx.HTTPError as exc:  # connection refused, refused address, protocol error
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        latency_ms = int((time.monotonic() - started) * 1000)
        now = utcnow()
        outcome = decide(
            classify(status_code, retry_after, now),
            attempts=claimed.attempts, created_at=claimed.created_at, now=now, policy=self.policy,
            status_code=status_code, latency_ms=latency_ms, error=error,
        )
        recorded = await self.store.finish(claimed, outcome)
        webhook_attempt(recorded, status_code)
        log.info("webhook %s to endpoint %s attempt %d: %s (%s, %d ms)", claimed.webhook_id,
                 claimed.endpoint_public_id, claimed.attempts, recorded, status_code or error, latency_ms)
        return recorded

    async def give_up(self, delivery_id: int, reason: str) -> None:
        """Dramatiq's retries of a crashing attempt ran out."""
        if await self.store.fail(delivery_id, reason):
            log.warning("webhook delivery %s failed: %s", delivery_id, reason)

    async def close(self) -> None:
        await self.client.aclose()
