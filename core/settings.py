"""The one settings object. Built once at start-up (env prefix POSTWIRE_) and passed down.

Nothing else in the code base reads os.environ. Every field is documented with its
default; `secret_key` has none in production and start-up fails naming it.
docs/settings.md is generated from this module (`make docs`), section by section
following the `# ...` comments in Settings; `postwire config` prints the effective
values through `Settings.masked()`.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.masking import MASK, NOT_SET, as_environment, is_secret, mask_url
from core.relay_settings import RelaySettings
from core.submission_settings import SubmissionSettings
from core.tracking_settings import TrackingSettings

__all__ = ["MASK", "NOT_SET", "RelaySettings", "Settings", "is_secret", "mask_url"]

class Settings(SubmissionSettings, TrackingSettings, BaseSettings):
    """Postwire's settings; each maps to the environment variable POSTWIRE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="POSTWIRE_", extra="forbid")

    # Storage and queue
    database_url: str = Field(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postwire",
        description="SQLAlchemy URL (postgresql+psycopg://... or sqlite+aiosqlite:///path).",
    )
    broker_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        description="RabbitMQ URL, or `stub://` for the in-process broker of the embedded mode.",
    )
    queue_prefix: str = Field(
        "postwire", description="Prefix of the queue names, so several deployments can share a broker."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL (rate limits, per-domain concurrency); empty: per-process limits.",
    )

    # API
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    grpc_port: int = Field(50051, description="gRPC port (0 picks a free one).")
    max_concurrent_calls: int = Field(
        256,
        ge=1,
        description="Unary calls a server process works on at once (streams and health checks not"
        " counted); past it a call is answered UNAVAILABLE at once, so callers back off instead of queueing.",
    )
    server_processes: int = Field(1, ge=1, description="Server processes sharing the gRPC port (SO_REUSEPORT);"
                                  " one process uses about one core.")
    secret_key: SecretStr = Field(
        description="Server secret for the keyed hash (HMAC-SHA256) of API keys. Required."
    )
    max_message_bytes: int = Field(
        25 * 1024 * 1024, description="Largest email accepted: bodies, headers and attachments (base64)."
    )
    max_recipients: int = Field(50, description="Most recipients per email, across to, cc and bcc.")
    send_stream_window: int = Field(5000, ge=1, le=100_000, description="Emails a SendStream call may have"
                                    " unacknowledged; past it the server stops reading until acks go out.")
    rate_limits: bool = Field(True, description="Enforce the per-key and per-account budgets below.")
    send_per_minute: int = Field(600, description="Sends (and cancels) per minute per key, unless the key sets its own.")
    read_per_minute: int = Field(1200, description="Other calls per minute per key, unless the key sets its own.")
    account_send_per_minute: int = Field(3000, description="Sends per minute per account, across its keys.")
    account_read_per_minute: int = Field(6000, description="Other calls per minute per account, across its keys.")
    max_streams_per_key: int = Field(10, description="Concurrent StreamEvents calls per key.")
    auth_failures_per_minute: int = Field(
        30, description="Failed authentications per minute per client address before RESOURCE_EXHAUSTED."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peers (e.g. Envoy's address) whose x-forwarded-for names the real client address.",
    )
    stream_poll_interval: float = Field(
        1.0,
        description="Safety-net re-read of an idle stream (s); new events wake streams at once"
        " through PostgreSQL LISTEN/NOTIFY (the embedded mode polls at this interval).",
    )
    stream_heartbeat_seconds: float = Field(15.0, description="Keep-alive message on a stream idle this long.")
    health_check_interval: float = Field(
        5.0, description="Seconds between the server's probes of PostgreSQL and RabbitMQ (gRPC health)."
    )
    health_check_timeout: float = Field(
        2.0, description="A probe that gets no answer within this many seconds counts as unreachable."
    )
    events_retention_days: float = Field(30.0, description="Events older than this are pruned.")
    body_retention_days: float = Field(7.0, description="Bodies, attachments and parsed inbound reports older than this are pruned.")

    # Delivery
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, description="SMTP relay port.")
    smtp_username: str = Field("", description="SMTP AUTH user name (AUTH only when set).")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP AUTH password.")
    smtp_tls: str = Field(
        "none", description="`none`, `starttls` (upgrade, verified) or `implicit` (TLS on connect)."
    )
    smtp_timeout: float = Field(30.0, description="Seconds for connect and each SMTP command.")
    smtp_ca_file: str = Field("", description="CA bundle (PEM) to verify the relay's certificate.")
    smtp_relays: list[RelaySettings] = Field(
        default_factory=list,
        description="Relays in priority order (JSON); when empty, the single smtp_* relay above.",
    )
    smtp_pool_size: int = Field(16, description="Open connections (and concurrent sends) per relay, per worker.")
    smtp_max_messages_per_connection: int = Field(100, description="Reconnect after this many messages.")
    smtp_idle_timeout: float = Field(30.0, description="Close pooled connections idle this long (s).")
    message_id_domain: str = Field(
        "postwire.local", description="Domain part of the Message-ID header of sent emails."
    )
    max_retries: int = Field(
        5, description="Dramatiq retries of an attempt that crashed (a bug or an outage, not SMTP)."
    )
    retry_min_backoff_ms: int = Field(
        30_000, description="First delay after a transient SMTP failure; doubles each attempt, ±20% jitter."
    )
    retry_max_backoff_ms: int = Field(3_600_000, description="Longest delay between two attempts.")
    retry_lifetime_seconds: float = Field(
        86_400.0, description="Retry transient failures for this long after acceptance, then FAILED."
    )
    lease_seconds: float = Field(
        300.0, description="A claimed email whose worker has not finished by then is retried."
    )
    domain_concurrency: int = Field(
        20, description="Concurrent deliveries per recipient domain across all workers (0: no limit)."
    )
    schedule_horizon_days: float = Field(30.0, description="How far ahead send_at may be.")
    publish_grace_seconds: float = Field(
        5.0, description="An accepted email still unpublished after this is published by the scheduler."
    )
    publish_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="How long Send waits for the broker to confirm an accepted email's delivery message;"
        " past it (or on any publish failure) Send still answers OK and the scheduler publishes the email"
        " after publish_grace_seconds.",
    )
    republish_after_seconds: float = Field(
        1800.0,
        description="A QUEUED email published this long ago and still unclaimed is published again"
        " (its message was lost); keep it above the longest expected queue wait.",
    )
    scheduler_interval: float = Field(1.0, description="Seconds between the scheduler's rounds.")
    worker_threads: int = Field(
        16, description="Deliveries in progress at once per worker process (Dramatiq worker threads)."
    )

    # Sending domains and DKIM
    require_verified_domains: bool = Field(
        True,
        description="Send refuses a From domain that is not a verified domain of the account (or a"
        " subdomain of one): FAILED_PRECONDITION. Test keys are never refused; `postwire dev` turns it off.",
    )
    domain_recheck_hours: float = Field(
        24.0, gt=0, description="The scheduler looks every domain's DNS records up again after this long."
    )
    sending_host: str = Field(
        "",
        description="The host name receivers see: the EHLO name, the SPF `a:` suggestion and the"
        " return-path MX host. Empty: this machine's fully qualified name.",
    )
    bounce_subdomain: str = Field(
        "bounces", description="Label of each sending domain's return-path (bounce) domain: `bounces.<domain>`."
    )

    # What comes back: bounces, complaints, unsubscribes
    inbound_host: str = Field("127.0.0.1", description="Address the inbound SMTP listener (`postwire inbound`) binds to.")
    inbound_port: int = Field(25, description="Port of the inbound listener: bounces, feedback reports, unsubscribe mail.")
    inbound_max_bytes: int = Field(10 * 1024 * 1024, description="Largest report the inbound listener accepts.")
    inbound_timeout: float = Field(60.0, gt=0, description="Seconds an inbound SMTP client may stay silent.")
    return_path_domain: str = Field(
        "",
        description="Bounce domain for mail whose From domain is not a verified sending domain (its own"
        " `bounces.<domain>` is used otherwise); empty: such mail keeps the From address as envelope sender.",
    )
    public_url: str = Field(
        "",
        pattern=r"^(|https?://\S+)$",
        description="Base URL where Envoy serves Postwire to the internet (`https://mail.example.com`): one-click"
        " unsubscribe links point there. Empty: unsubscribe headers carry the mailto only.",
    )

    # Direct-to-MX delivery
    delivery_route: str = Field(
        "mx",
        pattern="^(mx|relay)$",
        description="`mx`: deliver straight to each recipient domain's MX hosts; `relay`: hand every"
        " message to the smtp_* relay(s) (a smarthost). `postwire dev` uses `relay` to its local outbox.",
    )
    dns_servers: list[str] = Field(
        default_factory=list,
        description="DNS servers (IP addresses) for MX, TXT and A lookups; empty: those of /etc/resolv.conf.",
    )
    dns_port: int = Field(53, description="Port of the dns_servers.")
    dns_timeout: float = Field(5.0, gt=0, description="Seconds a DNS lookup may take before it counts as failed (temporary).")
    mx_port: int = Field(25, description="Port of the recipients' MX hosts (25 on the internet; tests use another).")
    mx_connections_per_host: int = Field(
        5, ge=1, description="Open connections (and concurrent transactions) per destination MX host, per worker."
    )
    mx_starttls: bool = Field(
        True,
        description="Opportunistic STARTTLS whenever an MX host offers it (a certificate that does not verify"
        " is still used, as receivers expect); false: never.",
    )
    mx_timeout: float = Field(60.0, gt=0, description="Seconds for connect and each SMTP command to an MX host.")

    # Embedded mode
    data_dir: Path = Field(Path(".postwire"), description="Where the embedded mode keeps its files.")

    # Webhooks
    webhook_retry_lifetime_seconds: float = Field(
        86_400.0, description="Retry a webhook event that fails transiently for this long, then give up."
    )
    webhook_timeout_seconds: float = Field(10.0, description="Seconds a webhook endpoint has to answer.")
    webhook_allow_private: bool = Field(
        False,
        description="Allow webhook URLs on loopback, private, link-local and other non-public addresses.",
    )
    webhook_secret_overlap_seconds: float = Field(
        86_400.0, description="After a secret rotation, the previous secret also signs deliveries this long."
    )
    webhook_disable_after_seconds: float = Field(
        432_000.0, description="An endpoint whose every attempt failed for this long is disabled (5 days)."
    )
    webhook_min_backoff_ms: int = Field(
        5_000, description="First delay before retrying a webhook event; doubles each attempt, ±20% jitter."
    )
    webhook_max_backoff_ms: int = Field(3_600_000, description="Longest delay between two webhook attempts.")

    # Observability
    log_format: str = Field(
        "text",
        pattern="^(text|json)$",
        description="`text` (one readable line per record) or `json` (one JSON object per line: time,"
        " level, logger, message, and request_id, message_id, account_id when known).",
    )
    log_level: str = Field(
        "INFO", pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$", description="Least severe level logged."
    )
    log_requests: bool = Field(True, description="One INFO line per RPC: method, status code, duration.")
    metrics_host: str = Field(
        "127.0.0.1", description="Address the Prometheus endpoints bind to (0.0.0.0 in a container)."
    )
    metrics_port: int = Field(
        9464, description="The server's Prometheus endpoint (/metrics); 0 turns it off."
    )
    worker_metrics_port: int = Field(
        9465,
        description="A worker's Prometheus endpoint (/metrics); 0 turns it off. Workers sharing a host"
        " need a port each: a port already taken is logged and left out, the worker runs on.",
    )
    queue_metrics_interval: float = Field(
        15.0, description="Seconds between a worker's readings of the queue depth (PostgreSQL, RabbitMQ); 0: never."
    )
    otel_endpoint: str = Field(
        "",
        pattern=r"^(|https?://\S+)$",
        description="OpenTelemetry tracing: the OTLP/HTTP (protobuf) URL of a collector, such as"
        " `http://127.0.0.1:4318/v1/traces` (one without a path gets `/v1/traces`); empty: tracing off."
        " Sampling, batching and exporter headers follow the SDK's `OTEL_*` variables (docs/observability.md).",
    )
    otel_service_name: str = Field(
        "postwire",
        min_length=1,
        description="Prefix of each process's OpenTelemetry `service.name`: `<name>-server`, `<name>-worker`.",
    )

    def relays(self) -> list[RelaySettings]:
        """The relays to try, in order."""
        if self.smtp_relays:
            return list(self.smtp_relays)
        return [
            RelaySettings(
                host=self.smtp_host,
                port=self.smtp_port,
                tls=self.smtp_tls,
                username=self.smtp_username,
                password=self.smtp_password,
                ca_file=self.smtp_ca_file,
                timeout=self.smtp_timeout,
            )
        ]

    def sending_hostname(self) -> str:
        """The EHLO name and the host receivers see (sending_host, else this machine's FQDN)."""
        return self.sending_host or socket.getfqdn()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def masked(self) -> dict[str, str]:
        """Every setting as POSTWIRE_<NAME> -> value as the environment would spell it
        (JSON for lists, true/false), with secrets and URL passwords masked."""
        return as_environment(self)
