"""Server composition root: builds every dependency from Settings and serves gRPC."""

from __future__ import annotations

import logging
from datetime import timedelta

import dramatiq
import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from core.delivery.queue import Publisher, WebhookPublisher, close_broker, make_broker
from core.domains.address_check import AddressChecker
from core.domains.manager import DomainManager, DomainPolicy
from core.domains.resolver import Resolver
from core.domains.senders import VerifiedSenders
from core.domains.store import DomainStore
from core.emails.store import Store
from core.events.notify import make_notifier
from core.keys.manager import KeyManager
from core.keys.store import KeyStore
from core.observability.metrics import MetricsEndpoint
from core.observability.tracing import Tracing
from core.observability.tracing import setup as setup_tracing
from core.returns.tokens import Tokens
from core.returns.unsubscribe import OneClick
from core.settings import Settings
from core.stats.query import StatsStore
from core.storage.db import make_engine
from core.suppressions.manager import SuppressionManager
from core.suppressions.store import SuppressionStore
from core.templates.manager import TemplateManager
from core.templates.store import TemplateStore
from core.webhooks.manager import WebhookManager, WebhookPolicy
from core.webhooks.signing import SecretBox
from core.webhooks.store import WebhookStore
from postwire.v1 import (
    address_service_pb2,
    address_service_pb2_grpc,
    domain_service_pb2,
    domain_service_pb2_grpc,
    email_service_pb2,
    email_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    stats_service_pb2,
    stats_service_pb2_grpc,
    suppression_service_pb2,
    suppression_service_pb2_grpc,
    template_service_pb2,
    template_service_pb2_grpc,
    unsubscribe_service_pb2,
    unsubscribe_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)
from server.address_servicer import AddressServicer
from server.auth import ANONYMOUS_PER_MINUTE, AuthInterceptor
from server.closing import close_all
from server.composition import email_service, rate_defaults, rate_limiters, send_limits
from server.domain_servicer import DomainServicer
from server.health import HealthMonitor
from server.interceptors import ErrorInterceptor
from server.key_servicer import KeyServicer
from server.metrics import MetricsInterceptor
from server.overload import OverloadInterceptor
from server.ratelimit import RateLimitInterceptor
from server.request_id import RequestContextInterceptor
from server.servicer import EmailServicer
from server.stats_servicer import StatsServicer
from server.suppression_servicer import SuppressionServicer
from server.template_servicer import TemplateServicer
from server.tracing import rpc_tracing
from server.tracking_http import tracking_endpoint
from server.unsubscribe_servicer import UnsubscribeServicer
from server.webhook_servicer import WebhookServicer

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    email_service_pb2.DESCRIPTOR.services_by_name["EmailService"].full_name,
    key_service_pb2.DESCRIPTOR.services_by_name["KeyService"].full_name,
    webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
    domain_service_pb2.DESCRIPTOR.services_by_name["DomainService"].full_name,
    address_service_pb2.DESCRIPTOR.services_by_name["AddressService"].full_name,
    suppression_service_pb2.DESCRIPTOR.services_by_name["SuppressionService"].full_name,
    unsubscribe_service_pb2.DESCRIPTOR.services_by_name["UnsubscribeService"].full_name,
    template_service_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name,
    stats_service_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
)
MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # room for a 25 MB email in base64; Send explains the limit
MAX_CONNECTION_AGE_MS = 300_000


class Server:
    """A running gRPC server and what it owns."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker | None = None) -> None:
        self.settings = settings
        engine = make_engine(settings.database_url)
        self.store = Store(engine)
        self.broker = broker or make_broker(settings)
        self.owns_broker = broker is None
        self.notifier = make_notifier(settings.database_url)
        domain_store = DomainStore(engine)
        self.senders = VerifiedSenders(domain_store)
        self.publishers = (Publisher(self.broker, settings), WebhookPublisher(self.broker, settings))
        self.service = email_service(settings, engine, self.store, self.publishers[0], self.senders, self.notifier)
        self.keys = KeyManager(KeyStore(engine), settings.secret_key.get_secret_value())
        self.limiter, self.slots = rate_limiters(settings)

        interceptors: list[grpc.aio.ServerInterceptor] = [
            RequestContextInterceptor(settings.log_requests),
            *rpc_tracing(settings),  # a span per RPC when POSTWIRE_OTEL_ENDPOINT is set
            MetricsInterceptor(),
            ErrorInterceptor(),
            OverloadInterceptor(settings.max_concurrent_calls),
            AuthInterceptor(
                self.keys, self.limiter, settings.auth_failures_per_minute, frozenset(settings.trusted_proxies),
                anonymous_per_minute=ANONYMOUS_PER_MINUTE if settings.rate_limits else 0,
            ),
        ]
        if settings.rate_limits:
            defaults = rate_defaults(settings)
            interceptors.append(RateLimitInterceptor(self.limiter, self.slots, defaults))
        self.grpc = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # HTTP/2 pings keep idle connections (and the streams on them) alive
                # through proxies and detect dead peers.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                # After five minutes a connection is asked to move on (GOAWAY; calls in
                # progress, streams included, finish undisturbed): clients reconnect and
                # the kernel spreads them again over POSTWIRE_SERVER_PROCESSES.
                ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
            ],
        )
        limits = send_limits(settings)
        self.templates = TemplateManager(TemplateStore(engine))
        email_service_pb2_grpc.add_EmailServiceServicer_to_server(
            EmailServicer(self.service, limits, settings.send_stream_window, self.templates), self.grpc
        )
        template_service_pb2_grpc.add_TemplateServiceServicer_to_server(TemplateServicer(self.templates), self.grpc)
        key_service_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(self.keys), self.grpc)
        self.webhooks = WebhookManager(
            WebhookStore(engine),
            SecretBox(settings.secret_key.get_secret_value()),
            self.publishers[1].publish,
            WebhookPolicy(settings.webhook_allow_private, timedelta(seconds=settings.webhook_secret_overlap_seconds)),
        )
        webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookServicer(self.webhooks), self.grpc)
        resolver = Resolver.from_settings(settings)
        self.domains = DomainManager(
            domain_store,
            SecretBox(settings.secret_key.get_secret_value()),
            Resolver.from_settings(settings, cache=False),  # a check sees DNS as it is now
            DomainPolicy(settings.sending_hostname(), settings.bounce_subdomain,
                         timedelta(hours=settings.domain_recheck_hours)),
            on_change=self.senders.forget,
        )
        domain_service_pb2_grpc.add_DomainServiceServicer_to_server(DomainServicer(self.domains), self.grpc)
        address_service_pb2_grpc.add_AddressServiceServicer_to_server(
            AddressServicer(AddressChecker(engine, resolver)), self.grpc
        )
        unsubscribe_service_pb2_grpc.add_UnsubscribeServiceServicer_to_server(
            UnsubscribeServicer(OneClick(engine, Tokens(settings.secret_key.get_secret_value()))), self.grpc
        )
        suppression_service_pb2_grpc.add_SuppressionServiceServicer_to_server(
            SuppressionServicer(SuppressionManager(SuppressionStore(engine))), self.grpc
        )
        stats_service_pb2_grpc.add_StatsServiceServicer_to_server(StatsServicer(StatsStore(engine)), self.grpc)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self.monitor: HealthMonitor | None = None
        reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc)
        self.port = self.grpc.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
        self.metrics = MetricsEndpoint(settings.metrics_host, settings.metrics_port, "server")
        self.tracking = tracking_endpoint(settings, engine)  # /t/o/..., /t/c/... behind Envoy
        self.tracing = Tracing()

    @property
    def address(self) -> str:
        return f"{self.settings.grpc_host}:{self.port}"

    async def start(self) -> None:
        self.tracing = setup_tracing(self.settings, "server")  # off unless POSTWIRE_OTEL_ENDPOINT
        await self.notifier.start()
        # SERVING only while PostgreSQL and RabbitMQ answer (server/health.py); the
        # first probe runs before the port opens, so health is never claimed unchecked.
        self.monitor = HealthMonitor.for_settings(self.settings, self.health, SERVICE_NAMES)
        await self.monitor.start()
        await self.grpc.start()
        self.metrics.start()
        await self.tracking.start()
        log.info("gRPC listening on %s", self.address)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, end streams with UNAVAILABLE (clients resume from their
        last cursor), let unary calls finish within `grace` seconds."""
        if self.monitor is not None:  # NOT_SERVING from now on: balancers route elsewhere
            await self.monitor.stop()
        self.service.shut_down()
        await self.tracking.stop()
        await self.grpc.stop(grace)
        await self.service.close()
        await self.notifier.stop()
        await self.store.close()
        await close_all(self.limiter, self.slots)
        for publisher in self.publishers:
            await publisher.close()
        if self.owns_broker:
            close_broker(self.broker)
        self.metrics.stop()
        self.tracing.shutdown()  # exports the last spans
