"""SmtpTransport against real in-process aiosmtpd servers: pooling, per-recipient
results, failover between relays, TLS verification, AUTH, SMTPUTF8 and timeouts."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.settings import RelaySettings, Settings
from tests.support.ports import free_port
from workers.delivery import pool as smtp_pool
from workers.delivery.smtp import SmtpTransport, SmtpUtf8Unsupported

BODY = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@dataclass
class Handler:
    """Records what arrived and on which connection; injects faults per test."""

    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> RCPT reply
    data_replies: list[str] = field(default_factory=list)  # next DATA replies, in turn
    rset_replies: list[str] = field(default_factory=list)  # next RSET replies, in turn
    data_delay: float = 0.0
    close_after_data: bool = False
    peers: list[Any] = field(default_factory=list)  # client address at each MAIL
    delivered: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    data_commands: int = 0
    rsets: int = 0
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def connections(self) -> int:
        """Connections that carried at least one transaction."""
        return len(set(self.peers))

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.peers.append(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.rsets += 1
        return self.rset_replies.pop(0) if self.rset_replies else "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_commands += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
            if self.data_replies:
                return self.data_replies.pop(0)
            self.delivered.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            if self.close_after_data:
                asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return "250 2.0.0 queued"
        finally:
            with self.lock:
                self.active -= 1


@dataclass
class Server:
    handler: Handler
    port: int

    def relay(self, **kw: Any) -> RelaySettings:
        return RelaySettings(host="127.0.0.1", port=self.port, timeout=kw.pop("timeout", 5.0), **kw)


@pytest.fixture
def smtpd() -> Iterator[Callable[..., Server]]:
    """Starts aiosmtpd servers on free ports: smtpd(**Controller kwargs) -> Server."""
    controllers: list[Controller] = []

    def start(handler: Handler | None = None, **kw: Any) -> Server:
        handler = handler or Handler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        controllers.append(controller)
        return Server(handler, port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
async def transport() -> AsyncIterator[Callable[..., SmtpTransport]]:
    """transport(relay, ..., **settings) -> SmtpTransport, closed after the test."""
    made: list[SmtpTransport] = []

    def make(*relays: RelaySettings, **settings: Any) -> SmtpTransport:
        made.append(SmtpTransport(Settings(secret_key="x", smtp_relays=list(relays), **settings)))
        return made[-1]

    yield make
    for t in made:
        await t.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str, ssl.SSLContext]:
    """A private CA, its PEM file, and a server context with a certificate for 127.0.0.1."""
    authority = trustme.CA()
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    return authority, str(pem), server_ctx


def caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


async def send(t: SmtpTransport, recipients: list[str] | None = None, **kw: Any) -> Any:
    return await t.send("a@example.com", recipients or ["b@example.com"], BODY, **kw)


# Pooling


async def test_one_connection_carries_several_messages_with_rset_between(smtpd, transport, monkeypatch) -> None:
    monkeypatch.setattr(smtp_pool, "FRESH_SECONDS", 0.0)
    server = smtpd()
    t = transport(server.relay())
    for _ in range(3):
        result = await send(t)
        assert result.data_code == 250
    assert len(server.handler.delivered) == 3
    assert server.handler.connections == 1
    assert server.handler.rsets == 2


async def test_a_connection_that_just_delivered_is_reused_without_rset(smtpd, transport) -> None:
    server = smtpd()
    t = transport(server.relay())
    for _ in range(3):
        assert (await send(t)).data_code == 250
    assert (server.handler.connections, server.handler.rsets, len(server.handler.delivered)) == (1, 0, 3)


async def test_messages_per_connection_are_capped(smtpd, transport) -> None:
    server = smtpd()
    t = transport(server.relay(), smtp_max_messages_per_connection=2)
    for _ in range(5):
        await send(t)
    assert len(server.handler.delivered) == 5
    assert server.handler.connections == 3


async def test_a_connection_idle_too_long_is_replaced(smtpd, transport) -> None:
    server = smtpd()
    t = transport(server.relay(), smtp_idle_timeout=0.2)
    await send(t)
    await send(t)
    await asyncio.sleep(0.4)
    await send(t)
    assert server.handler.connections == 2


async def test_reconnects_after_the_server_closed_the_connection(smtpd, transport) -> None:
    server = smtpd(Handler(close_after_data=True))
    t = transport(server.relay())
    await send(t)
    await asyncio.sleep(0.2)
    result = await send(t)
    assert result.data_code == 250
    assert len(server.handler.delivered) == 2
    assert server.handler.connections == 2


async def test_a_failed_rset_discards_the_pooled_connection(smtpd, transport, monkeypatch) -> None:
    monkeypatch.setattr(smtp_pool, "FRESH_SECONDS", 0.0)
    server = smtpd(Handler(rset_replies=["421 4.3.2 shutting down"]))
    t = transport(server.relay())
    await send(t)
    result = await send(t)
    assert result.data_code == 250
    assert server.handler.connections == 2
    assert len(server.handler.delivered) == 2


async def test_concurrency_per_relay_is_bounded_by_the_pool_size(smtpd, transport) -> None:
    server = smtpd(Handler(data_delay=0.1))
    t = transport(server.relay(), smtp_pool_size=2)
    results = await asyncio.gather(*(send(t) for _ in range(6)))
    assert [r.data_code for r in results] == [250] * 6
    assert server.handler.max_active == 2
    assert server.handler.connections == 2


# Per-recipient results


async def test_one_refused_recipient_does_not_fail_the_others(smtpd, transport) -> None:
    server = smtpd(Handler(refuse={"c@example.com": "550 5.1.1 no such user"}))
    t = transport(server.relay())
    result = await send(t, ["b@example.com", "c@example.com", "d@example.com"])
    assert result.accepted == ["b@example.com", "d@example.com"]
    assert result.refused == {"c@example.com": (550, "5.1.1 no such user")}
    assert result.data_code == 250
    assert server.handler.delivered[0][1] == ["b@example.com", "d@example.com"]


async def test_every_recipient_refused_sends_no_data(smtpd, transport) -> None:
    refuse = {"b@example.com": "550 5.1.1 no such user", "c@example.com": "450 4.2.1 try later"}
    server = smtpd(Handler(refuse=refuse))
    t = transport(server.relay())
    result = await send(t, ["b@example.com", "c@example.com"])
    assert (result.accepted, result.data_code, result.data_message) == ([], 0, "")
    assert result.refused == {"b@example.com": (550, "5.1.1 no such user"), "c@example.com": (450, "4.2.1 try later")}
    assert server.handler.data_commands == 0
    assert server.handler.rsets == 1
    await send(t, ["d@example.com"])  # the connection stays usable
    assert server.handler.connections == 1


# Failover


async def test_421_on_data_moves_to_the_next_relay(smtpd, transport) -> None:
    first = smtpd(Handler(data_replies=["421 4.3.0 try later"]))
    second = smtpd()
    t = transport(first.relay(), second.relay())
    result = await send(t)
    assert result.relay == f"127.0.0.1:{second.port}"
    assert first.handler.delivered == []
    assert len(second.handler.delivered) == 1


async def test_a_closed_port_moves_to_the_next_relay(smtpd, transport) -> None:
    second = smtpd()
    t = transport(RelaySettings(host="127.0.0.1", port=free_port(), timeout=2.0), second.relay())
    result = await send(t)
    assert result.relay == f"127.0.0.1:{second.port}"
    assert len(second.handler.delivered) == 1


async def test_550_on_data_is_final(smtpd, transport) -> None:
    first = smtpd(Handler(data_replies=["550 5.7.1 content rejected"]))
    second = smtpd()
    t = transport(first.relay(), second.relay())
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(t)
    assert info.value.code == 550
    assert second.handler.connections == 0


async def test_every_relay_failing_raises_the_last_error(smtpd, transport) -> None:
    first = smtpd(Handler(data_replies=["451 4.3.0 local error"]))
    t = transport(RelaySettings(host="127.0.0.1", port=free_port(), timeout=2.0), first.relay())
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(t)
    assert info.value.code == 451


# TLS and AUTH


async def test_starttls_verifies_against_the_configured_ca(smtpd, transport, ca) -> None:
    _, pem, server_ctx = ca
    server = smtpd(tls_context=server_ctx, require_starttls=True)
    result = await send(transport(server.relay(tls="starttls", ca_file=pem)))
    assert result.data_code == 250
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)) as info:
        await send(transport(server.relay(tls="starttls")))
    assert caused_by(info.value, ssl.SSLCertVerificationError)
    assert len(server.handler.delivered) == 1


async def test_implicit_tls_verifies_against_the_configured_ca(smtpd, transport, ca) -> None:
    _, pem, server_ctx = ca
    server = smtpd(ssl_context=server_ctx)
    result = await send(transport(server.relay(tls="implicit", ca_file=pem)))
    assert result.data_code == 250
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)) as info:
        await send(transport(server.relay(tls="implicit")))
    assert caused_by(info.value, ssl.SSLCertVerificationError)


def check_password(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"user", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=True (the default) sends no reply


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_username_and_password(smtpd, transport) -> None:
    server = smtpd(authenticator=check_password, auth_required=True, auth_require_tls=False)
    result = await send(transport(server.relay(username="user", password="s3cret")))
    assert result.data_code == 250
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await send(transport(server.relay(username="user", password="wrong")))
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:  # no AUTH at all
        await send(transport(server.relay()))
    assert info.value.code == 530
    assert len(server.handler.delivered) == 1


async def test_auth_over_starttls(smtpd, transport, ca) -> None:
    _, pem, server_ctx = ca
    server = smtpd(tls_context=server_ctx, authenticator=check_password, auth_required=True)
    result = await send(transport(server.relay(tls="starttls", ca_file=pem, username="user", password="s3cret")))
    assert result.data_code == 250


# SMTPUTF8


async def test_smtputf8_is_sent_when_offered(smtpd, transport) -> None:
    server = smtpd(enable_SMTPUTF8=True)
    result = await send(transport(server.relay()), ["jürgen@exämple.com"], smtputf8=True)
    assert result.accepted == ["jürgen@exämple.com"]
    assert server.handler.delivered[0][1] == ["jürgen@exämple.com"]


async def test_smtputf8_required_but_not_offered(smtpd, transport) -> None:
    server = smtpd(enable_SMTPUTF8=False)
    t = transport(server.relay())
    with pytest.raises(SmtpUtf8Unsupported, match=f"relay 127.0.0.1:{server.port} does not support SMTPUTF8"):
        await send(t, ["jürgen@exämple.com"], smtputf8=True)
    assert server.handler.peers == []


async def test_smtputf8_moves_to_a_relay_that_offers_it(smtpd, transport) -> None:
    first, second = smtpd(enable_SMTPUTF8=False), smtpd(enable_SMTPUTF8=True)
    result = await send(transport(first.relay(), second.relay()), ["jürgen@exämple.com"], smtputf8=True)
    assert result.relay == f"127.0.0.1:{second.port}"


# Timeouts


async def test_a_data_timeout_raises_and_the_connection_is_not_reused(smtpd, transport) -> None:
    server = smtpd(Handler(data_delay=1.5))
    t = transport(server.relay(timeout=0.5))
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await send(t)
    server.handler.data_delay = 0
    result = await send(t)
    assert result.data_code == 250
    assert server.handler.connections == 2


def test_unknown_tls_mode_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="tls"):
        SmtpTransport(Settings(secret_key="x", smtp_relays=[RelaySettings(host="h", tls="ssl")]))
