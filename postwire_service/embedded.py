"""The embedded default (`postwire dev`): everything in one process, no servers to install.

SQLite under .postwire/, Dramatiq's stub broker with in-process workers, a local
SMTP capture server writing .eml files, the inbound listener for bounces and complaints
on 127.0.0.1:2526, the SMTP submission listener on 127.0.0.1:2587 (STARTTLS), 2465
(implicit TLS) and 2525 (plain; AUTH without TLS allowed from loopback) with a
self-signed certificate made once in .postwire/, and Envoy in front when its binary is there.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from core.delivery.queue import Publisher, make_broker
from core.errors import Unauthenticated
from core.ids import random_token
from core.keys.manager import SCOPES, KeyManager, KeyOptions
from core.keys.store import KeyStore
from core.settings import Settings
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from postwire_service.capture import CaptureServer
from postwire_service.dev_tls import self_signed
from postwire_service.inbound_command import InboundService
from postwire_service.signals import until_stopped
from postwire_service.submission_command import SubmissionService, describe
from server.app import Server
from workers.app import WorkerProcess
from workers.scheduler import Scheduler, SchedulerThread

CAPTURE_PORT = 1025
INBOUND_PORT = 2526
SUBMISSION_PORTS = {"submission_port": 2587, "submission_tls_port": 2465, "submission_plain_port": 2525}


class EmbeddedSettings(Settings):
    """The embedded mode's values are defaults: POSTWIRE_* variables still win."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


def dev_settings(data_dir: Path = Path(".postwire"), **overrides: object) -> Settings:
    """Settings for the embedded mode; the secret is generated once and kept."""
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_file = data_dir / "secret-key"
    if not secret_file.exists():
        secret_file.write_text(random_token(48))
        secret_file.chmod(0o600)
    values: dict[str, object] = {
        "database_url": f"sqlite+aiosqlite:///{(data_dir / 'postwire.db').resolve()}",
        "broker_url": "stub://",
        "redis_url": "",
        "smtp_host": "127.0.0.1",
        "smtp_port": CAPTURE_PORT,
        "smtp_tls": "none",
        # The local outbox is a relay; no DNS, so no domain to verify (docs/domains.md).
        "delivery_route": "relay",
        "require_verified_domains": False,
        "secret_key": secret_file.read_text().strip(),
        "data_dir": data_dir,
        "worker_threads": 4,
        "retry_min_backoff_ms": 2_000,
        "retry_max_backoff_ms": 60_000,
        "retry_lifetime_seconds": 600.0,
        "inbound_port": INBOUND_PORT,
        # Nothing is verified here: mail carries VERP return paths on this domain, so
        # bounces sent to the inbound listener find their email (docs/feedback.md).
        "return_path_domain": "bounces.localhost",
        **SUBMISSION_PORTS,
        "submission_allow_plain_auth": True,  # loopback clients only
        # Tracking links and pixels point at the local Envoy, which routes /t/ to the
        # server's tracking handler on 127.0.0.1:8090 (docs/tracking.md).
        "tracking_base_url": "http://127.0.0.1:8080",
    }
    cert, key = self_signed(data_dir)
    values.update(submission_tls_cert=str(cert.resolve()), submission_tls_key=str(key.resolve()))
    values.update(overrides)
    return EmbeddedSettings(**values)  # type: ignore[arg-type]


async def ensure_dev_key(settings: Settings) -> str:
    """The dev API key (every scope) from .postwire/dev-api-key, created if needed."""
    key_file = settings.data_dir / "dev-api-key"
    store = KeyStore(make_engine(settings.database_url))
    keys = KeyManager(store, settings.secret_key.get_secret_value())
    try:
        if key_file.exists():
            key = key_file.read_text().strip()
            try:
                await keys.authenticate(key)
                return key
            except Unauthenticated:
                pass
        account_id = await store.find_or_create_account("dev")
        _, key = await keys.create(account_id, KeyOptions(name="dev", scopes=frozenset(SCOPES)))
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        return key
    finally:
        await store.close()


def start_envoy(grpc_port: int) -> subprocess.Popen[bytes] | None:
    """Envoy on 127.0.0.1:8080 from envoy/envoy.yaml, when run from the repo root."""
    binary = shutil.which("envoy") or str(Path(sys.executable).with_name("envoy"))
    config = Path("envoy/envoy.yaml")
    if not Path(binary).exists() or not config.exists() or grpc_port != 50051:
        print("Envoy: not started (needs the envoy binary, envoy/envoy.yaml and gRPC on 50051)")
        return None
    return subprocess.Popen(
        [binary, "-c", str(config), "--concurrency", "1", "--log-level", "warn", "--base-id", "7"],
    )


async def run_dev(settings: Settings, with_envoy: bool = True) -> None:
    upgrade(settings.database_url)
    key = await ensure_dev_key(settings)
    outbox = settings.data_dir / "outbox"
    capture = CaptureServer(outbox, host=settings.smtp_host, port=settings.smtp_port)
    capture.start()
    broker = make_broker(settings)
    workers = WorkerProcess(settings, broker)
    workers.start()
    scheduler = SchedulerThread(Scheduler(settings, Publisher(broker, settings)))
    scheduler.start()
    server = Server(settings, broker)
    await server.start()
    inbound = InboundService(settings, broker)
    try:
        listening = bool(await inbound.start())
    except OSError as exc:  # the port is taken: everything else still runs
        print(f"Inbound listener: not started ({exc})")
        listening = False
    submission = SubmissionService(settings, broker)
    submitting = await submission.start(metrics=False, skip_taken=True)  # served on the server's /metrics
    envoy = start_envoy(server.port) if with_envoy else None
    print(f"Postwire dev: gRPC on {server.address}" + (", JSON on http://127.0.0.1:8080" if envoy else ""))
    print(f"API key: {key}  (also in {settings.data_dir / 'dev-api-key'})")
    if listening:
        print(f"Bounces and complaints: SMTP on {settings.inbound_host}:{settings.inbound_port}")
    if submitting:
        print(f"SMTP submission (user apikey, the API key as password): {describe(settings.submission_host, submitting)}")
    if envoy and server.tracking.port:
        print(f"Open and click tracking: http://127.0.0.1:8080/t/ (handler on {settings.tracking_host}:{settings.tracking_port})")
    print(f"Delivered mail lands in {outbox}/  — Ctrl-C to stop", flush=True)

    try:
        await until_stopped()
    finally:
        print("shutting down…", flush=True)
        if envoy:
            envoy.terminate()
            envoy.wait(timeout=10)
        await submission.stop()
        await server.stop()
        await inbound.stop()
        await asyncio.to_thread(scheduler.stop)
        await asyncio.to_thread(workers.stop)
        capture.stop()
