"""Asynchronous DNS (dnspython): the mail hosts of a domain (RFC 5321 §5.1, RFC 7505),
host addresses, TXT and MX records.

One `Resolver` per process and event loop. Answers are cached for their TTL
(`dns.resolver.Cache`); negative answers (NXDOMAIN, no record of the type) for their
SOA minimum, at most NEGATIVE_TTL seconds. Failures (SERVFAIL, timeouts, no server
answering) are never cached. Errors form one family, `DnsError`: permanent ones say the
domain cannot receive mail and carry the SMTP reply code and enhanced status a bounce
reports; temporary ones are worth retrying.
"""

from __future__ import annotations

import ipaddress
import random
import time

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from core.settings import Settings

# Longest time a negative answer is cached: a record just added is found soon after.
NEGATIVE_TTL = 60.0


class DnsError(Exception):
    """A DNS lookup that gave no usable answer for `name`."""

    permanent: bool = False
    code: int | None = None  # the SMTP reply code a bounce for it reports

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(message)


class PermanentDnsError(DnsError):
    """The domain cannot receive mail. Codes avoid 550/551/553, which suppress the
    address: a DNS misconfiguration says nothing about the mailbox."""

    permanent = True
    code = 554


class NullMx(PermanentDnsError):
    """The domain publishes a null MX (RFC 7505): it accepts no mail."""

    code = 556

    def __init__(self, name: str) -> None:
        super().__init__(name, f"5.1.10 {name} accepts no mail (null MX, RFC 7505)")


class NoSuchDomain(PermanentDnsError):
    """NXDOMAIN, or not a valid domain name."""

    def __init__(self, name: str, why: str = "no such domain (NXDOMAIN)") -> None:
        super().__init__(name, f"5.1.2 {name}: {why}")


class NoMailHost(PermanentDnsError):
    """The domain exists but has no MX, A or AAAA record."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"5.4.4 {name} has no MX, A or AAAA record: no mail host")


class TemporaryDnsError(DnsError):
    """SERVFAIL, a timeout, no server answered: try again later."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(name, f"4.4.3 DNS lookup for {name} failed: {why}")


class _Cache(dns.resolver.Cache):
    """dnspython's TTL cache, keeping negative answers at most NEGATIVE_TTL."""

    def put(self, key: dns.resolver.CacheKey, value: dns.resolver.Answer) -> None:
        if value.rrset is None:
            value.expiration = min(value.expiration, time.time() + NEGATIVE_TTL)
        super().put(key, value)


def _host(name: dns.name.Name) -> str:
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True)


class Resolver:
    """Lookups through `servers` (IP addresses) on `port`; empty: /etc/resolv.conf."""

    def __init__(self, servers: list[str], port: int = 53, timeout: float = 5.0, *, cache: bool = True) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not servers)
        if servers:
            self._resolver.nameservers = list(servers)
        self._resolver.port = port
        self._resolver.timeout = timeout  # per server
        self._resolver.lifetime = timeout  # the whole lookup
        self._resolver.cache = _Cache() if cache else None

    @classmethod
    def from_settings(cls, settings: Settings, *, cache: bool = True) -> Resolver:
        """The configured resolver; `cache=False` for lookups that must see DNS as it
        is now (domain verification, right after the user published a record)."""
        return cls(settings.dns_servers, settings.dns_port, settings.dns_timeout, cache=cache)

    async def mail_hosts(self, domain: str) -> list[str]:
        """The hosts to try for `domain`, in order: MX targets by preference, equal
        preferences shuffled; without MX, the domain itself if it has an address.
        Raises NullMx, NoSuchDomain, NoMailHost or TemporaryDnsError."""
        name = _domain(domain)
        try:
            answer = await self._lookup(name, "MX")
        except dns.resolver.NoAnswer:
            answer = None
        if answer is None:  # no MX: the implicit MX is the domain (RFC 5321 §5.1)
            for rdtype in ("A", "AAAA"):
                try:
                    await self._lookup(name, rdtype)
                    return [_host(name)]
                except dns.resolver.NoAnswer:
                    continue
            raise NoMailHost(_host(name))
        by_preference: dict[int, list[str]] = {}
        for rdata in answer:
            if rdata.exchange != dns.name.root:  # "." alongside real hosts: skipped
                by_preference.setdefault(rdata.preference, []).append(_host(rdata.exchange))
        if not by_preference:
            raise NullMx(_host(name))
        hosts: list[str] = []
        seen: set[str] = set()
        for preference in sorted(by_preference):
            group = by_preference[preference]
            random.shuffle(group)
            for host in group:
                if host.lower() not in seen:
                    seen.add(host.lower())
                    hosts.append(host)
        return hosts

    async def mx_records(self, domain: str) -> list[tuple[int, str]]:
        """(preference, host) as published ("." for a null MX), by preference; [] when
        the domain has none or does not exist. Raises TemporaryDnsError."""
        try:
            answer = await self._lookup(_domain(domain), "MX")
        except (dns.resolver.NoAnswer, NoSuchDomain):
            return []
        return sorted((r.preference, _host(r.exchange)) for r in answer)

    async def addresses(self, host: str) -> list[str]:
        """The IPv4 then IPv6 addresses of `host`; [] when it has none (or does not
        exist). An IP address is its own answer. Raises TemporaryDnsError."""
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        try:
            name = _domain(host)
        except NoSuchDomain:
            return []
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(r.address for r in await self._lookup(name, rdtype))
            except (dns.resolver.NoAnswer, NoSuchDomain):
                continue
        return found

    async def txt(self, name: str) -> list[str]:
        """The TXT values at `name`, each record's strings joined; [] when there are
        none or the name does not exist. Raises TemporaryDnsError."""
        try:
            answer = await self._lookup(_domain(name), "TXT")
        except (dns.resolver.NoAnswer, NoSuchDomain):
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    async def _lookup(self, name: dns.name.Name, rdtype: str) -> dns.resolver.Answer:
        """Raises dns.resolver.NoAnswer (the name exists without that type),
        NoSuchDomain or TemporaryDnsError."""
        try:
            return await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NoAnswer:
            raise
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(_host(name)) from None
        except dns.resolver.LifetimeTimeout as exc:
            raise TemporaryDnsError(_host(name), f"{rdtype} query timed out") from exc
        except dns.resolver.NoNameservers as exc:
            raise TemporaryDnsError(_host(name), f"{rdtype} query: no server answered ({_rcodes(exc)})") from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise TemporaryDnsError(_host(name), f"{rdtype} query: {exc}") from exc


def _domain(domain: str) -> dns.name.Name:
    """The absolute DNS name of a domain given in ASCII or Unicode (IDNA)."""
    text = domain.strip().rstrip(".")
    if not text:
        raise NoSuchDomain(domain or '""', "not a domain name")
    try:
        return dns.name.from_text(text) if text.isascii() else dns.name.from_unicode(text)
    except dns.exception.DNSException as exc:
        raise NoSuchDomain(text, f"not a valid domain name ({exc})") from None


def _rcodes(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    return ", ".join(sorted({str(e[3]) for e in errors})) or "no answer"
