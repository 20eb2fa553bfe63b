"""WebhookService servicer: manage the calling account's webhook endpoints (admin scope)."""

from __future__ import annotations

import grpc

from core.errors import FieldViolation, InvalidArgument
from core.webhooks.manager import WebhookManager
from core.webhooks.store import ENABLED, AttemptRecord, EndpointChanges, EndpointRecord
from postwire.v1 import webhook_pb2, webhook_service_pb2_grpc
from postwire.v1 import webhook_service_pb2 as pb
from server.convert import event_type_to_proto, event_types_from_proto, timestamp
from server.interceptors import current_principal

_OUTCOMES = {
    "delivered": webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_DELIVERED,
    "retrying": webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_RETRYING,
    "failed": webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_FAILED,
    "endpoint_disabled": webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_ENDPOINT_DISABLED,
}
_UPDATABLE = ("url", "description", "event_types")


def endpoint_to_proto(record: EndpointRecord) -> webhook_pb2.WebhookEndpoint:
    return webhook_pb2.WebhookEndpoint(
        endpoint_id=record.public_id,
        url=record.url,
        description=record.description,
        event_types=sorted(event_type_to_proto(t) for t in record.event_types),  # type: ignore[misc]
        state=webhook_pb2.WEBHOOK_ENDPOINT_STATE_ENABLED if record.state == ENABLED
        else webhook_pb2.WEBHOOK_ENDPOINT_STATE_DISABLED,
        disabled_reason=record.disabled_reason,
        disabled_at=timestamp(record.disabled_at),
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
        failing_since=timestamp(record.failing_since),
        previous_secret_expires_at=timestamp(record.previous_secret_expires_at),
    )


def attempt_to_proto(record: AttemptRecord) -> webhook_pb2.WebhookAttempt:
    return webhook_pb2.WebhookAttempt(
        webhook_id=record.webhook_id,
        event_type=record.event_type,
        message_id=record.message_id,
        attempt=record.attempt,
        attempted_at=timestamp(record.attempted_at),
        status_code=record.status_code or 0,
        latency_ms=record.latency_ms,
        error=record.error,
        outcome=_OUTCOMES.get(record.outcome, webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_UNSPECIFIED),
    )


def _changes(request: pb.UpdateWebhookEndpointRequest) -> EndpointChanges:
    """AIP-134: the mask names what to change; without one, every non-empty field."""
    paths = list(request.update_mask.paths)
    unknown = [p for p in paths if p not in _UPDATABLE]
    if unknown:
        raise InvalidArgument([FieldViolation("update_mask", f"cannot update {', '.join(unknown)}")])
    if not paths:
        paths = [p for p in _UPDATABLE if getattr(request, p)]
    return EndpointChanges(
        url=request.url if "url" in paths else None,
        description=request.description if "description" in paths else None,
        event_types=frozenset(event_types_from_proto(list(request.event_types), "event_types"))
        if "event_types" in paths else None,
    )


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    def __init__(self, webhooks: WebhookManager) -> None:
        self.webhooks = webhooks

    async def CreateWebhookEndpoint(self, request: pb.CreateWebhookEndpointRequest,
                                    context: grpc.aio.ServicerContext) -> pb.CreateWebhookEndpointResponse:
        types = event_types_from_proto(list(request.event_types), "event_types")
        record, secret = await self.webhooks.create(
            current_principal.get().account_id, request.url, request.description, types
        )
        return pb.CreateWebhookEndpointResponse(endpoint=endpoint_to_proto(record), secret=secret)

    async def ListWebhookEndpoints(self, request: pb.ListWebhookEndpointsRequest,
                                   context: grpc.aio.ServicerContext) -> pb.ListWebhookEndpointsResponse:
        records = await self.webhooks.list(current_principal.get().account_id)
        return pb.ListWebhookEndpointsResponse(endpoints=[endpoint_to_proto(r) for r in records])

    async def UpdateWebhookEndpoint(self, request: pb.UpdateWebhookEndpointRequest,
                                    context: grpc.aio.ServicerContext) -> pb.UpdateWebhookEndpointResponse:
        record = await self.webhooks.update(current_principal.get().account_id, request.endpoint_id, _changes(request))
        return pb.UpdateWebhookEndpointResponse(endpoint=endpoint_to_proto(record))

    async def DeleteWebhookEndpoint(self, request: pb.DeleteWebhookEndpointRequest,
                                    context: grpc.aio.ServicerContext) -> pb.DeleteWebhookEndpointResponse:
        await self.webhooks.delete(current_principal.get().account_id, request.endpoint_id)
        return pb.DeleteWebhookEndpointResponse()

    async def TestWebhookEndpoint(self, request: pb.TestWebhookEndpointRequest,
                                  context: grpc.aio.ServicerContext) -> pb.TestWebhookEndpointResponse:
        webhook_id = await self.webhooks.send_test(current_principal.get().account_id, request.endpoint_id)
        return pb.TestWebhookEndpointResponse(webhook_id=webhook_id)

    async def ListWebhookAttempts(self, request: pb.ListWebhookAttemptsRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ListWebhookAttemptsResponse:
        records, token = await self.webhooks.attempts(
            current_principal.get().account_id, request.endpoint_id, page_size=request.page_size,
            page_token=request.page_token, webhook_id=request.webhook_id,
        )
        return pb.ListWebhookAttemptsResponse(attempts=[attempt_to_proto(r) for r in records], next_page_token=token)

    async def RotateWebhookSecret(self, request: pb.RotateWebhookSecretRequest,
                                  context: grpc.aio.ServicerContext) -> pb.RotateWebhookSecretResponse:
        record, secret, until = await self.webhooks.rotate_secret(current_principal.get().account_id, request.endpoint_id)
        return pb.RotateWebhookSecretResponse(
            endpoint=endpoint_to_proto(record), secret=secret, previous_secret_expires_at=timestamp(until)
        )

    async def EnableWebhookEndpoint(self, request: pb.EnableWebhookEndpointRequest,
                                    context: grpc.aio.ServicerContext) -> pb.EnableWebhookEndpointResponse:
        record = await self.webhooks.enable(current_principal.get().account_id, request.endpoint_id)
        return pb.EnableWebhookEndpointResponse(endpoint=endpoint_to_proto(record))
