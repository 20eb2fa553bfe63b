"""What each RPC needs: the key scope it requires and the budget it draws on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.emails.service import MAX_BATCH


@dataclass(frozen=True)
class MethodPolicy:
    scope: str  # send, read, events or admin
    budget: str  # "send" or "read"
    counted: str = ""  # a repeated field whose items each count against the budget (else 1 per call)
    most: int = 0  # the most items a call may have; a call over it costs 1 (the servicer refuses it)
    streamed: bool = False  # a request stream whose messages each count, charged by its servicer

    def cost(self, request: Any) -> int:
        if not self.counted:
            return 1
        items = len(getattr(request, self.counted, ()))
        return items if 1 <= items <= self.most else 1


PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Called without an API key (a signed token in the request is the authority); limited
# per client address instead (server/auth.py).
ANONYMOUS_METHODS = frozenset({
    "/postwire.v1.UnsubscribeService/ShowUnsubscribe",
    "/postwire.v1.UnsubscribeService/Unsubscribe",
})

POLICIES = {
    "/postwire.v1.EmailService/Send": MethodPolicy("send", "send"),
    "/postwire.v1.EmailService/SendBatch": MethodPolicy("send", "send", counted="messages", most=MAX_BATCH),
    "/postwire.v1.EmailService/SendStream": MethodPolicy("send", "send", streamed=True),
    "/postwire.v1.EmailService/CancelScheduled": MethodPolicy("send", "send"),
    "/postwire.v1.EmailService/GetStatus": MethodPolicy("read", "read"),
    "/postwire.v1.EmailService/ListEmails": MethodPolicy("read", "read"),
    "/postwire.v1.EmailService/StreamEvents": MethodPolicy("events", "read"),
    "/postwire.v1.KeyService/CreateApiKey": MethodPolicy("admin", "send"),
    "/postwire.v1.KeyService/ListApiKeys": MethodPolicy("admin", "read"),
    "/postwire.v1.KeyService/RevokeApiKey": MethodPolicy("admin", "send"),
    "/postwire.v1.WebhookService/CreateWebhookEndpoint": MethodPolicy("admin", "send"),
    "/postwire.v1.WebhookService/ListWebhookEndpoints": MethodPolicy("admin", "read"),
    "/postwire.v1.WebhookService/UpdateWebhookEndpoint": MethodPolicy("admin", "send"),
    "/postwire.v1.WebhookService/DeleteWebhookEndpoint": MethodPolicy("admin", "send"),
    "/postwire.v1.WebhookService/TestWebhookEndpoint": MethodPolicy("admin", "send"),
    "/postwire.v1.WebhookService/ListWebhookAttempts": MethodPolicy("admin", "read"),
    "/postwire.v1.WebhookService/RotateWebhookSecret": MethodPolicy("admin", "send"),
    "/postwire.v1.WebhookService/EnableWebhookEndpoint": MethodPolicy("admin", "send"),
    "/postwire.v1.DomainService/CreateDomain": MethodPolicy("admin", "send"),
    "/postwire.v1.DomainService/GetDomain": MethodPolicy("admin", "read"),
    "/postwire.v1.DomainService/ListDomains": MethodPolicy("admin", "read"),
    "/postwire.v1.DomainService/VerifyDomain": MethodPolicy("admin", "send"),
    "/postwire.v1.DomainService/DeleteDomain": MethodPolicy("admin", "send"),
    "/postwire.v1.DomainService/RotateDkimKey": MethodPolicy("admin", "send"),
    "/postwire.v1.AddressService/ValidateAddress": MethodPolicy("read", "read"),
    "/postwire.v1.AddressService/ValidateAddresses": MethodPolicy("read", "read"),
    "/postwire.v1.SuppressionService/ListSuppressions": MethodPolicy("read", "read"),
    "/postwire.v1.SuppressionService/GetSuppression": MethodPolicy("read", "read"),
    "/postwire.v1.SuppressionService/AddSuppression": MethodPolicy("admin", "send"),
    "/postwire.v1.SuppressionService/RemoveSuppression": MethodPolicy("admin", "send"),
    "/postwire.v1.SuppressionService/BatchAddSuppressions": MethodPolicy("admin", "send"),
    "/postwire.v1.SuppressionService/BatchRemoveSuppressions": MethodPolicy("admin", "send"),
    "/postwire.v1.TemplateService/CreateTemplate": MethodPolicy("admin", "send"),
    "/postwire.v1.TemplateService/GetTemplate": MethodPolicy("read", "read"),
    "/postwire.v1.TemplateService/ListTemplates": MethodPolicy("read", "read"),
    "/postwire.v1.TemplateService/UpdateTemplate": MethodPolicy("admin", "send"),
    "/postwire.v1.TemplateService/DeleteTemplate": MethodPolicy("admin", "send"),
    "/postwire.v1.TemplateService/ListTemplateVersions": MethodPolicy("read", "read"),
    "/postwire.v1.TemplateService/ActivateTemplateVersion": MethodPolicy("admin", "send"),
    "/postwire.v1.TemplateService/RenderTemplate": MethodPolicy("read", "read"),
    "/postwire.v1.StatsService/GetStats": MethodPolicy("read", "read"),
}

# A method of ours with no policy is refused, so a new RPC cannot ship unguarded.
DENY = MethodPolicy("none", "read")


def policy_for(method: str) -> MethodPolicy | None:
    """None for public methods (health, reflection, ANONYMOUS_METHODS); DENY for unknown ones."""
    if method.startswith(PUBLIC_PREFIXES) or method in ANONYMOUS_METHODS:
        return None
    return POLICIES.get(method, DENY)
