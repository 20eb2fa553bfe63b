"""MxTransport against a real DNS server and real aiosmtpd receivers on distinct
loopback addresses (127.0.0.2, .3, ...) sharing one port: MX order and fallback, null
MX, DNS failures, per-recipient results, grouping by domain, opportunistic STARTTLS,
greylisting, connection reuse and the per-host limit."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from core.domains.resolver import NoSuchDomain, NullMx, Resolver, TemporaryDnsError
from core.settings import RelaySettings, Settings
from tests.support.dns import DnsServer
from tests.support.ports import free_port
from tests.support.smtp import Recorder, SmtpServer
from workers.delivery.classify import Kind, classify, classify_reply
from workers.delivery import mx
from workers.delivery.mx import MxTransport
from workers.delivery.smtp import GroupOutcome, SmtpTransport

BODY = b"From: a@sender.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


@dataclass
class Receiver(Recorder):
    """A Recorder that also notes the connection of each transaction, and can slow DATA
    to count the transactions in progress at once."""

    peers: list[Any] = field(default_factory=list)
    data_delay: float = 0.0
    active: int = 0
    max_active: int = 0

    @property
    def connections(self) -> int:
        return len(set(self.peers))

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.peers.append(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.active += 1  # handlers run on the server's one event loop thread
        self.max_active = max(self.max_active, self.active)
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.active -= 1


@dataclass
class Net:
    """One test's DNS zone, MX port and receivers."""

    dns: DnsServer
    port: int
    controllers: list[Controller] = field(default_factory=list)
    transports: list[MxTransport] = field(default_factory=list)

    def receiver(self, address: str, **controller_options: Any) -> Receiver:
        """An MX host listening on `address`, the test's MX port."""
        receiver = Receiver()
        controller = Controller(receiver, hostname=address, port=self.port, enable_SMTPUTF8=True, **controller_options)
        controller.start()
        self.controllers.append(controller)
        return receiver

    def transport(self, **settings: Any) -> MxTransport:
        options: dict[str, Any] = {"mx_timeout": 5, "sending_host": "out.postwire.test", **settings}
        config = Settings(
            secret_key="x", dns_servers=[self.dns.host], dns_port=self.dns.port, dns_timeout=1, mx_port=self.port, **options
        )
        self.transports.append(MxTransport(config, Resolver.from_settings(config)))
        return self.transports[-1]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
async def net(dns: DnsServer) -> AsyncIterator[Net]:
    made = Net(dns, free_port())
    yield made
    for t in made.transports:
        await t.close()
    for controller in made.controllers:
        controller.stop()


async def send(t: MxTransport, *recipients: str) -> list[GroupOutcome]:
    return await t.deliver("a@sender.test", list(recipients) or ["b@example.test"], BODY)


async def one(t: MxTransport, *recipients: str) -> GroupOutcome:
    outcomes = await send(t, *recipients)
    assert len(outcomes) == 1
    return outcomes[0]


# MX selection


async def test_the_lowest_preference_gets_the_mail(net: Net) -> None:
    net.dns.add("pref.test", "MX", "20 backup.pref.test.")
    net.dns.add("pref.test", "MX", "10 main.pref.test.")
    net.dns.add("main.pref.test", "A", "127.0.0.2")
    net.dns.add("backup.pref.test", "A", "127.0.0.3")
    main, backup = net.receiver("127.0.0.2"), net.receiver("127.0.0.3")
    t = net.transport()
    for _ in range(5):
        outcome = await one(t, "b@pref.test")
        assert outcome.error is None and outcome.result is not None
        assert (outcome.result.relay, outcome.result.data_code, outcome.result.accepted) == ("main.pref.test", 250, ["b@pref.test"])
    assert (len(main.received), len(backup.received)) == (5, 0)


async def test_equal_preferences_share_the_mail(net: Net) -> None:
    net.dns.add("equal.test", "MX", "10 one.equal.test.")
    net.dns.add("equal.test", "MX", "10 two.equal.test.")
    net.dns.add("one.equal.test", "A", "127.0.0.2")
    net.dns.add("two.equal.test", "A", "127.0.0.3")
    first, second = net.receiver("127.0.0.2"), net.receiver("127.0.0.3")
    t = net.transport()
    for _ in range(30):
        assert (await one(t, "b@equal.test")).result is not None
    assert len(first.received) + len(second.received) == 30
    assert first.received and second.received


async def test_a_host_that_is_down_passes_to_the_next(net: Net) -> None:
    net.dns.add("down.test", "MX", "10 dead.down.test.")
    net.dns.add("down.test", "MX", "20 alive.down.test.")
    net.dns.add("dead.down.test", "A", "127.0.0.2")  # nothing listens there
    net.dns.add("alive.down.test", "A", "127.0.0.3")
    alive = net.receiver("127.0.0.3")
    outcome = await one(net.transport(), "b@down.test")
    assert outcome.result is not None and outcome.result.relay == "alive.down.test"
    assert len(alive.received) == 1


async def test_without_mx_the_domain_address_is_used(net: Net) -> None:
    net.dns.add("implicit.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    outcome = await one(net.transport(), "b@implicit.test")
    assert outcome.result is not None and outcome.result.relay == "implicit.test"
    assert receiver.received[0].rcpt_tos == ["b@implicit.test"]


# DNS failures


async def test_null_mx_bounces_without_a_connection(net: Net) -> None:
    net.dns.add("nomail.test", "MX", "0 .")
    net.dns.add("nomail.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    outcome = await one(net.transport(), "b@nomail.test", "c@nomail.test")
    assert isinstance(outcome.error, NullMx) and outcome.result is None
    assert outcome.recipients == ["b@nomail.test", "c@nomail.test"]
    verdict = classify(outcome.error)
    assert (verdict.kind, verdict.code) == (Kind.PERMANENT, 556)
    assert receiver.peers == [] and receiver.received == []
    assert [q for q in net.dns.queries if q[0] == "nomail.test."] == [("nomail.test.", "MX")]


async def test_nxdomain_bounces(net: Net) -> None:
    outcome = await one(net.transport(), "b@does-not-exist.test")
    assert isinstance(outcome.error, NoSuchDomain)
    verdict = classify(outcome.error)
    assert (verdict.kind, verdict.code) == (Kind.PERMANENT, 554)
    assert verdict.message.startswith("5.1.2 ")


async def test_servfail_defers_and_a_retry_delivers(net: Net) -> None:
    net.dns.add("servfail.test", "MX", "10 mx.servfail.test.")
    net.dns.add("mx.servfail.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    t = net.transport()
    net.dns.servfail("servfail.test")
    try:
        outcome = await one(t, "b@servfail.test")
    finally:
        net.dns.servfail("servfail.test", False)
    assert isinstance(outcome.error, TemporaryDnsError)
    assert classify(outcome.error).kind is Kind.TRANSIENT
    assert classify(outcome.error).message.startswith("4.4.3 DNS lookup for servfail.test failed")
    retried = await one(t, "b@servfail.test")
    assert retried.result is not None and len(receiver.received) == 1


# Recipients and domains


async def test_rcpt_refusals_are_per_recipient(net: Net) -> None:
    net.dns.add("rcpt.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    receiver.rcpt_faults["gone@rcpt.test"] = ["550 5.1.1 no such user"]
    outcome = await one(net.transport(), "gone@rcpt.test", "here@rcpt.test")
    assert outcome.result is not None
    assert outcome.result.accepted == ["here@rcpt.test"]
    assert outcome.result.refused == {"gone@rcpt.test": (550, "5.1.1 no such user")}
    assert receiver.received[0].rcpt_tos == ["here@rcpt.test"]


async def test_two_domains_are_two_transactions(net: Net) -> None:
    for domain in ("left.test", "right.test"):
        net.dns.add(domain, "MX", f"10 mx.{domain}.")
    net.dns.add("mx.left.test", "A", "127.0.0.2")
    net.dns.add("mx.right.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    outcomes = await send(net.transport(), "a@left.test", "b@RIGHT.test", "c@Left.Test")
    assert [o.recipients for o in outcomes] == [["a@left.test", "c@Left.Test"], ["b@RIGHT.test"]]
    assert [o.result.relay for o in outcomes if o.result] == ["mx.left.test", "mx.right.test"]
    assert sorted(sorted(r.rcpt_tos) for r in receiver.received) == [["a@left.test", "c@Left.Test"], ["b@RIGHT.test"]]


# TLS


@pytest.fixture(scope="module")
def self_signed() -> ssl.SSLContext:
    """A server context with a certificate no client trusts."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("mx.tls.test").configure_cert(server_ctx)
    return server_ctx


async def test_starttls_with_a_self_signed_certificate(net: Net, self_signed: ssl.SSLContext) -> None:
    net.dns.add("tls.test", "MX", "10 mx.tls.test.")
    net.dns.add("mx.tls.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2", tls_context=self_signed, require_starttls=True)
    outcome = await one(net.transport(), "b@tls.test")
    assert outcome.result is not None and outcome.result.tls.startswith("TLS")
    assert len(receiver.received) == 1


async def test_a_receiver_without_starttls_gets_plain_text(net: Net) -> None:
    net.dns.add("plain.test", "A", "127.0.0.2")
    net.receiver("127.0.0.2")
    outcome = await one(net.transport(), "b@plain.test")
    assert outcome.result is not None and outcome.result.tls == ""


async def test_starttls_is_not_used_when_turned_off(net: Net, self_signed: ssl.SSLContext) -> None:
    net.dns.add("notls.test", "A", "127.0.0.2")
    net.receiver("127.0.0.2", tls_context=self_signed)
    outcome = await one(net.transport(mx_starttls=False), "b@notls.test")
    assert outcome.result is not None and outcome.result.tls == ""


async def test_a_failing_starttls_falls_back_to_plain_text(net: Net) -> None:
    broken = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("mx.badtls.test").configure_cert(broken)
    broken.verify_mode = ssl.CERT_REQUIRED  # wants a client certificate we do not have: TLS fails
    net.dns.add("badtls.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2", tls_context=broken)
    t = net.transport()
    for _ in range(2):
        outcome = await one(t, "b@badtls.test")
        assert outcome.result is not None and outcome.result.tls == ""
    assert len(receiver.received) == 2


# Greylisting


@pytest.mark.parametrize("where", ["rcpt", "data"])
async def test_greylisting_defers_then_delivers(net: Net, where: str) -> None:
    net.dns.add(f"grey-{where}.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    rcpt = f"b@grey-{where}.test"
    table = receiver.rcpt_faults if where == "rcpt" else receiver.faults
    table[rcpt] = ["451 4.7.1 Greylisted, try again in 5 minutes"]
    t = net.transport()
    first = await one(t, rcpt)
    if where == "rcpt":
        assert first.result is not None and first.result.accepted == []
        verdict = classify_reply(*first.result.refused[rcpt])
    else:
        assert first.error is not None
        verdict = classify(first.error)
    assert (verdict.kind, verdict.code) == (Kind.TRANSIENT, 451)
    second = await one(t, rcpt)
    assert second.result is not None and second.result.accepted == [rcpt] and second.result.data_code == 250
    assert len(receiver.received) == 1


# Connections


async def test_messages_to_one_host_share_a_connection(net: Net) -> None:
    net.dns.add("reuse.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    t = net.transport()
    for _ in range(4):
        assert (await one(t, "b@reuse.test")).result is not None
    assert (len(receiver.received), receiver.connections) == (4, 1)


async def test_sessions_per_host_are_limited(net: Net) -> None:
    net.dns.add("busy.test", "A", "127.0.0.2")
    receiver = net.receiver("127.0.0.2")
    receiver.data_delay = 0.1
    t = net.transport(mx_connections_per_host=2)
    outcomes = await asyncio.gather(*(one(t, f"u{i}@busy.test") for i in range(8)))
    assert all(o.result is not None and o.result.data_code == 250 for o in outcomes)
    assert receiver.max_active == 2
    assert receiver.connections == 2


# The relay transport speaks the same interface


async def test_the_relay_transport_delivers_as_one_group() -> None:
    with SmtpServer() as relay:
        t = SmtpTransport(Settings(secret_key="x", smtp_relays=[RelaySettings(host="127.0.0.1", port=relay.port, timeout=5)]))
        try:
            outcomes = await t.deliver("a@sender.test", ["b@one.test", "c@two.test"], BODY)
        finally:
            await t.close()
    assert len(outcomes) == 1 and outcomes[0].recipients == ["b@one.test", "c@two.test"]
    assert outcomes[0].result is not None and outcomes[0].result.accepted == ["b@one.test", "c@two.test"]


async def test_the_relay_transport_returns_its_error() -> None:
    port = free_port()  # nothing listens
    t = SmtpTransport(Settings(secret_key="x", smtp_relays=[RelaySettings(host="127.0.0.1", port=port, timeout=2)]))
    outcomes = await t.deliver("a@sender.test", ["b@one.test"], BODY)
    assert len(outcomes) == 1 and outcomes[0].result is None
    assert classify(outcomes[0].error).kind is Kind.TRANSIENT  # type: ignore[arg-type]


async def test_idle_connections_and_empty_pools_are_swept(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mx, "PRUNE_INTERVAL", 0.0)
    net.dns.add("sweep.test", "A", "127.0.0.2")
    net.dns.add("other.test", "A", "127.0.0.3")
    net.receiver("127.0.0.2")
    net.receiver("127.0.0.3")
    t = net.transport(smtp_idle_timeout=0.1)
    await one(t, "b@sweep.test")
    await asyncio.sleep(0.2)
    await one(t, "b@other.test")  # sweeps first: sweep.test's connection idled out
    assert [key[0] for key in t.pools] == ["other.test"]
