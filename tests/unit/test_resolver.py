"""The resolver against a real DNS server on loopback (tests/support/dns.py): MX order
and fallback (RFC 5321 §5.1), null MX (RFC 7505), error mapping, IDN, caching."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domains import resolver as resolver_module
from core.domains.resolver import (
    DnsError,
    NoMailHost,
    NoSuchDomain,
    NullMx,
    PermanentDnsError,
    Resolver,
    TemporaryDnsError,
)
from core.settings import Settings
from tests.support.dns import DnsServer


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
def resolver(dns: DnsServer) -> Resolver:
    return Resolver([dns.host], dns.port, timeout=1.0)


def count(dns: DnsServer, name: str, rtype: str) -> int:
    return dns.queries.count((name.lower() + ".", rtype))


async def test_mx_hosts_come_by_preference_without_the_trailing_dot(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("order.test", "MX", "30 c.order.test.")
    dns.add("order.test", "MX", "10 a.order.test.")
    dns.add("order.test", "MX", "20 b.order.test.")
    assert await resolver.mail_hosts("order.test") == ["a.order.test", "b.order.test", "c.order.test"]
    assert await resolver.mx_records("order.test") == [(10, "a.order.test"), (20, "b.order.test"), (30, "c.order.test")]


async def test_equal_preferences_are_shuffled(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("equal.test", "MX", "5 first.equal.test.")
    for host in ("x", "y"):
        dns.add("equal.test", "MX", f"10 {host}.equal.test.")
    orders = {tuple(await resolver.mail_hosts("equal.test")) for _ in range(60)}
    assert orders == {
        ("first.equal.test", "x.equal.test", "y.equal.test"),
        ("first.equal.test", "y.equal.test", "x.equal.test"),
    }


async def test_without_mx_the_domain_itself_is_the_mail_host(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("bare-a.test", "A", "192.0.2.1")
    dns.add("bare-aaaa.test", "AAAA", "2001:db8::1")
    assert await resolver.mail_hosts("bare-a.test") == ["bare-a.test"]
    assert await resolver.mail_hosts("Bare-AAAA.test.") == ["Bare-AAAA.test"]


async def test_null_mx_is_permanent(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("nullmx.test", "MX", "0 .")
    dns.add("nullmx.test", "A", "192.0.2.1")  # an address does not make it a mail host
    with pytest.raises(NullMx) as caught:
        await resolver.mail_hosts("nullmx.test")
    assert caught.value.permanent and caught.value.code == 556
    assert str(caught.value) == "5.1.10 nullmx.test accepts no mail (null MX, RFC 7505)"
    assert await resolver.mx_records("nullmx.test") == [(0, ".")]


async def test_a_null_mx_beside_real_hosts_is_skipped(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("mixed.test", "MX", "0 .")
    dns.add("mixed.test", "MX", "10 mx.mixed.test.")
    assert await resolver.mail_hosts("mixed.test") == ["mx.mixed.test"]


async def test_nxdomain_is_no_such_domain(resolver: Resolver) -> None:
    with pytest.raises(NoSuchDomain) as caught:
        await resolver.mail_hosts("nowhere.test")
    assert isinstance(caught.value, PermanentDnsError) and caught.value.permanent
    assert caught.value.code == 554
    assert str(caught.value).startswith("5.1.2 nowhere.test")


async def test_a_domain_without_mx_or_address_has_no_mail_host(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("txtonly.test", "TXT", "v=spf1 -all")
    with pytest.raises(NoMailHost) as caught:
        await resolver.mail_hosts("txtonly.test")
    assert caught.value.permanent and caught.value.code == 554


@pytest.mark.parametrize("bad", ["", ".", "a..b.test", "x" * 64 + ".test"])
async def test_an_invalid_name_is_no_such_domain(resolver: Resolver, bad: str) -> None:
    with pytest.raises(NoSuchDomain):
        await resolver.mail_hosts(bad)


async def test_servfail_is_temporary_and_not_cached(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("flaky.test", "MX", "10 mx.flaky.test.")
    dns.servfail("flaky.test")
    try:
        with pytest.raises(TemporaryDnsError) as caught:
            await resolver.mail_hosts("flaky.test")
        assert not caught.value.permanent and caught.value.code is None
        assert str(caught.value).startswith("4.4.3 DNS lookup for flaky.test failed: ")
        assert "SERVFAIL" in str(caught.value)
        with pytest.raises(TemporaryDnsError):
            await resolver.txt("flaky.test")
        with pytest.raises(TemporaryDnsError):
            await resolver.addresses("flaky.test")
    finally:
        dns.servfail("flaky.test", False)
    assert await resolver.mail_hosts("flaky.test") == ["mx.flaky.test"]


async def test_a_server_that_never_answers_times_out_as_temporary() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes queries, answers none
        silent.bind(("127.0.0.1", 0))
        quiet = Resolver(["127.0.0.1"], silent.getsockname()[1], timeout=0.3)
        with pytest.raises(TemporaryDnsError, match="timed out"):
            await quiet.mail_hosts("example.test")


async def test_an_idn_domain_is_looked_up_in_its_ascii_form(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("xn--bcher-kva.test", "MX", "10 mx.xn--bcher-kva.test.")
    dns.add("xn--caf-dma.test", "A", "192.0.2.7")
    assert await resolver.mail_hosts("bücher.test") == ["mx.xn--bcher-kva.test"]
    assert await resolver.mail_hosts("café.test") == ["xn--caf-dma.test"]
    assert await resolver.addresses("café.test") == ["192.0.2.7"]


async def test_addresses_are_ipv4_then_ipv6(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("dual.test", "AAAA", "2001:db8::5")
    dns.add("dual.test", "A", "192.0.2.5")
    dns.add("dual.test", "A", "192.0.2.6")
    found = await resolver.addresses("dual.test")
    assert sorted(found[:2]) == ["192.0.2.5", "192.0.2.6"] and found[2:] == ["2001:db8::5"]
    dns.add("noaddr.test", "TXT", "x")
    assert await resolver.addresses("noaddr.test") == []
    assert await resolver.addresses("missing-host.test") == []
    assert await resolver.addresses("192.0.2.9") == ["192.0.2.9"]


async def test_txt_values_join_their_strings(dns: DnsServer, resolver: Resolver) -> None:
    long = "v=DKIM1; k=rsa; p=" + "A" * 400  # served as two 255-byte strings
    dns.add("sel._domainkey.txt.test", "TXT", long)
    dns.add("txt.test", "TXT", "v=spf1 -all")
    dns.add("txt.test", "TXT", "site-verification=abc")
    assert await resolver.txt("sel._domainkey.txt.test") == [long]
    assert sorted(await resolver.txt("txt.test")) == ["site-verification=abc", "v=spf1 -all"]
    assert await resolver.txt("nothing.txt.test") == []  # NXDOMAIN
    dns.add("a-only.txt.test", "A", "192.0.2.1")
    assert await resolver.txt("a-only.txt.test") == []  # NODATA
    assert await resolver.mx_records("a-only.txt.test") == []
    assert await resolver.mx_records("nothing.txt.test") == []


async def test_answers_are_cached_for_their_ttl(dns: DnsServer, resolver: Resolver) -> None:
    dns.add("cached.test", "MX", "10 mx.cached.test.")
    for _ in range(3):
        assert await resolver.mail_hosts("cached.test") == ["mx.cached.test"]
    assert count(dns, "cached.test", "MX") == 1
    dns.add("short.test", "MX", "10 mx.short.test.", ttl=0)
    for _ in range(2):
        await resolver.mail_hosts("short.test")
    assert count(dns, "short.test", "MX") == 2


async def test_negative_answers_are_cached_briefly(
    dns: DnsServer, resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns.add("neg.test", "A", "192.0.2.1")
    for _ in range(2):
        assert await resolver.txt("neg.test") == []
    assert count(dns, "neg.test", "TXT") == 1
    monkeypatch.setattr(resolver_module, "NEGATIVE_TTL", 0.0)
    dns.add("neg2.test", "A", "192.0.2.1")
    assert await resolver.txt("neg2.test") == []
    dns.add("neg2.test", "TXT", "now-here")
    assert await resolver.txt("neg2.test") == ["now-here"]


def test_errors_form_one_family() -> None:
    for exc in (NullMx("d.test"), NoSuchDomain("d.test"), NoMailHost("d.test"), TemporaryDnsError("d.test", "x")):
        assert isinstance(exc, DnsError) and exc.name == "d.test"
        assert isinstance(exc, PermanentDnsError) == exc.permanent
        assert exc.code not in {550, 551, 553}  # never suppresses the address


def test_from_settings_uses_the_dns_settings(dns: DnsServer) -> None:
    made = Resolver.from_settings(Settings(secret_key="x", dns_servers=[dns.host], dns_port=dns.port, dns_timeout=2))
    inner = made._resolver
    assert (inner.nameservers, inner.port, inner.lifetime) == ([dns.host], dns.port, 2.0)


@pytest.mark.skipif(not Path("/etc/resolv.conf").exists(), reason="no /etc/resolv.conf")
def test_no_servers_means_the_system_configuration() -> None:
    assert Resolver([])._resolver.nameservers
