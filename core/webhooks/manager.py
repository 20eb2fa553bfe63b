"""Use cases behind the webhook API: register, list, change, delete, test, rotate the
secret of and re-enable an account's endpoints, and read their attempts.

Secrets are generated here, returned once, and stored only encrypted (SecretBox).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.emails.model import EventType
from core.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from core.ids import random_token
from core.storage.db import database_errors_as_unavailable
from core.times import utcnow
from core.webhooks.events import TEST_TYPE, test_body, test_webhook_id
from core.webhooks.signing import SecretBox, generate_secret
from core.webhooks.store import (
    ENABLED,
    AttemptRecord,
    EndpointChanges,
    EndpointRecord,
    WebhookStore,
)
from core.webhooks.urls import check_url

MAX_DESCRIPTION = 200
MAX_ENDPOINTS = 20
DEFAULT_PAGE, MAX_PAGE = 50, 500
PUBLISH_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class WebhookPolicy:
    allow_private: bool = False
    secret_overlap: timedelta = timedelta(hours=24)


class WebhookManager:
    def __init__(self, store: WebhookStore, box: SecretBox, publish: Callable[[int], Awaitable[None]],
                 policy: WebhookPolicy = WebhookPolicy()) -> None:
        self.store = store
        self.box = box
        self.publish = publish
        self.policy = policy

    async def _check(self, url: str | None, description: str | None) -> None:
        violations = []
        if url is not None:
            violations += await check_url(url, self.policy.allow_private)
        if description is not None and len(description) > MAX_DESCRIPTION:
            violations.append(FieldViolation("description", f"at most {MAX_DESCRIPTION} characters"))
        if violations:
            raise InvalidArgument(violations)

    async def _get(self, account_id: int, endpoint_id: str) -> EndpointRecord:
        if not endpoint_id:
            raise InvalidArgument([FieldViolation("endpoint_id", "required")])
        async with database_errors_as_unavailable():
            record = await self.store.get(account_id, endpoint_id)
        if record is None:
            raise NotFound(f"no webhook endpoint {endpoint_id!r}")
        return record

    async def create(self, account_id: int, url: str, description: str,
                     event_types: Collection[EventType]) -> tuple[EndpointRecord, str]:
        """Register an endpoint; returns it and its secret (shown once)."""
        await self._check(url, description)
        async with database_errors_as_unavailable():
            if len(await self.store.list(account_id)) >= MAX_ENDPOINTS:
                raise InvalidArgument([FieldViolation("url", f"at most {MAX_ENDPOINTS} endpoints per account")])
            public_id = "whk_" + random_token(20)
            secret = generate_secret()
            record = await self.store.create(
                account_id, public_id, url, description, frozenset(event_types), self.box.seal(secret, public_id)
            )
        return record, secret

    async def list(self, account_id: int) -> list[EndpointRecord]:
        async with database_errors_as_unavailable():
            return await self.store.list(account_id)

    async def update(self, account_id: int, endpoint_id: str, changes: EndpointChanges) -> EndpointRecord:
        await self._get(account_id, endpoint_id)
        await self._check(changes.url, changes.description)
        return await self._change(account_id, endpoint_id, changes)

    async def _change(self, account_id: int, endpoint_id: str, changes: EndpointChanges) -> EndpointRecord:
        async with database_errors_as_unavailable():
            record = await self.store.update(account_id, endpoint_id, changes)
        if record is None:
            raise NotFound(f"no webhook endpoint {endpoint_id!r}")
        return record

    async def delete(self, account_id: int, endpoint_id: str) -> None:
        await self._get(account_id, endpoint_id)
        async with database_errors_as_unavailable():
            if not await self.store.delete(account_id, endpoint_id):
                raise NotFound(f"no webhook endpoint {endpoint_id!r}")

    async def send_test(self, account_id: int, endpoint_id: str) -> str:
        """Queue a `webhook.test` event for the endpoint; returns its webhook-id."""
        endpoint = await self._get(account_id, endpoint_id)
        webhook_id, now = test_webhook_id(), utcnow()
        async with database_errors_as_unavailable():
            delivery_id = await self.store.add_delivery(
                endpoint, webhook_id, TEST_TYPE, test_body(endpoint.public_id, now), now + PUBLISH_GRACE
            )
        try:
            await self.publish(delivery_id)
        except Unavailable:  # the scheduler publishes it after the grace period
            return webhook_id
        async with database_errors_as_unavailable():
            await self.store.mark_published(delivery_id)
        return webhook_id

    async def rotate_secret(self, account_id: int, endpoint_id: str) -> tuple[EndpointRecord, str, datetime]:
        """A new secret (shown once); the current one keeps signing for the overlap."""
        endpoint = await self._get(account_id, endpoint_id)
        async with database_errors_as_unavailable():
            current = await self.store.sealed_secret(endpoint.id)
        secret = generate_secret()
        until = utcnow() + self.policy.secret_overlap
        changes = EndpointChanges(values={
            "secret": self.box.seal(secret, endpoint.public_id),
            "previous_secret": current,
            "previous_secret_expires_at": until,
        })
        return await self._change(account_id, endpoint_id, changes), secret, until

    async def enable(self, account_id: int, endpoint_id: str) -> EndpointRecord:
        endpoint = await self._get(account_id, endpoint_id)
        if endpoint.state == ENABLED:
            return endpoint
        await self._check(endpoint.url, None)
        changes = EndpointChanges(values={"state": ENABLED, "disabled_reason": "", "disabled_at": None, "failing_since": None})
        return await self._change(account_id, endpoint_id, changes)

    async def attempts(self, account_id: int, endpoint_id: str, *, page_size: int = 0, page_token: str = "",
                       webhook_id: str = "") -> tuple[list[AttemptRecord], str]:
        endpoint = await self._get(account_id, endpoint_id)
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        before = None
        if page_token:
            if not (page_token.isascii() and page_token.isdigit()) or len(page_token) > 18:
                raise InvalidArgument([FieldViolation("page_token", "not a token returned by this service")])
            before = int(page_token)
        async with database_errors_as_unavailable():
            records = await self.store.attempts(endpoint.id, before_id=before, webhook_id=webhook_id, limit=limit)
        return records, str(records[-1].id) if len(records) == limit else ""
