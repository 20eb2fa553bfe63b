"""A real DNS server on loopback (dnslib), serving the zones a test needs.

    dns = DnsServer().start()
    dns.add("example.test", "MX", "10 mx1.example.test.")
    dns.add("mx1.example.test", "A", "127.0.0.2")
    dns.add("sel._domainkey.example.test", "TXT", "v=DKIM1; k=rsa; p=...")
    dns.servfail("broken.test")          # SERVFAIL for that name, until cleared
    dns.host, dns.port                   # point the resolver here (UDP and TCP)

A name with no record at all, and no record below it, answers NXDOMAIN; a name that
exists with another type answers NOERROR with no answer (NODATA). Long TXT values are
split into 255-byte strings, as real zones hold them. Records can change while the
server runs; the server answers from the current zone.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from tests.support.ports import free_port


def _name(name: str) -> str:
    return name.rstrip(".").lower() + "."


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        self.failing: set[str] = set()
        self.lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((qname, qtype))
            if qname in self.failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            records = list(self.records.get(qname, ()))
            exists = bool(records) or any(n.endswith("." + qname) for n in self.records if self.records[n])
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value, ttl in records:
            if rtype == qtype or (rtype == "CNAME" and qtype != "CNAME"):
                zone = f"{qname} {ttl} IN {rtype} {_zone_value(rtype, value)}"
                for rr in RR.fromZone(zone):
                    reply.add_answer(rr)
        return reply


def _zone_value(rtype: str, value: str) -> str:
    if rtype != "TXT":
        return value
    raw = value.encode()
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join('"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class DnsServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port()
        self.zone = _Zone()
        self._servers: list[DNSServer] = []

    def start(self) -> DnsServer:
        for tcp in (False, True):
            server = DNSServer(self.zone, address=self.host, port=self.port, tcp=tcp, logger=_Quiet())
            server.start_thread()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers.clear()

    def add(self, name: str, rtype: str, value: str, ttl: int = 60) -> None:
        with self.zone.lock:
            self.zone.records[_name(name)].append((rtype.upper(), value, ttl))

    def set(self, name: str, rtype: str, value: str, ttl: int = 60) -> None:
        """Replace the name's records of that type with this one."""
        self.remove(name, rtype)
        self.add(name, rtype, value, ttl)

    def remove(self, name: str, rtype: str | None = None) -> None:
        with self.zone.lock:
            key = _name(name)
            self.zone.records[key] = [r for r in self.zone.records[key] if rtype is not None and r[0] != rtype.upper()]

    def servfail(self, name: str, on: bool = True) -> None:
        with self.zone.lock:
            (self.zone.failing.add if on else self.zone.failing.discard)(_name(name))

    @property
    def queries(self) -> list[tuple[str, str]]:
        """(name, type) of every query answered so far."""
        with self.zone.lock:
            return list(self.zone.queries)

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Quiet:
    """dnslib's DNSLogger interface, logging nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
