"""Direct-to-MX delivery with DKIM on, side by side with the relay route and Postfix.

The internet stood up on loopback: a DNS server (tests/support/dns.py) serving MX and A
records for a few recipient domains (spread over two MX hosts, smtp-sink on 127.0.0.1
and 127.0.0.2 at the same port) and the sender domain's DKIM key. For each route, a
stack of its own (bench/_stack.py) accepts N emails while no worker runs, then
`--workers` worker processes drain them; figures: emails/s from the first to the last
SENT, worker CPU per email (CPU seconds of the worker processes from the first SENT to
the last, divided by the emails SENT in between) and DKIM signing time per message (the
workers' postwire_dkim_sign_seconds sum/count). Rows:

- mx + DKIM: POSTWIRE_DELIVERY_ROUTE=mx, require_verified_domains on, the From domain
  created (CreateDomain), its DKIM record published and verified (VerifyDomain);
- relay + DKIM: the same verified domain, every message handed to smtp-sink on
  127.0.0.1 (the relay), so the difference to the row above is the MX routing;
- relay, no DKIM: what bench/deliver.py measures (From bench@example.com);
- reference in the same run: Postfix relaying the same number of messages to the same
  sink (bench/postfix_ref.py; Postfix does not sign).

After the mx run one more message goes to a third sink (127.0.0.3) that keeps it,
and its signature is checked with dkimpy against the DNS server.

    .venv/bin/python bench/deliver_mx.py [-n 5000] [--workers 2] [--threads 16] [--size 2048]

Needs PostgreSQL, RabbitMQ and Redis (make services) and smtp-sink/smtp-source and
Postfix (scripts/ensure-services.sh --with-postfix). Uses its own databases and queue prefixes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from _stack import BenchStack, bench_stack, smtp_sink, wait_until
from accept import cpu_seconds
from postfix_ref import postfix_relay_rate

from postwire.v1 import domain_pb2, domain_service_pb2_grpc, email_service_pb2_grpc
from postwire.v1 import domain_service_pb2 as dpb
from postwire.v1 import email_service_pb2 as pb
from tests.support.dns import DnsServer
from tests.support.ports import free_port
from tests.support.processes import Process, run

SENDER_DOMAIN = "shop.example.com"  # .test is refused as a special-use name
MX_HOSTS = {"mx1.example.net": "127.0.0.1", "mx2.example.net": "127.0.0.2"}
CHECK_HOST, CHECK_ADDRESS, CHECK_DOMAIN = "mx-check.example.net", "127.0.0.3", "check.example.net"
RECIPIENT_DOMAINS = [f"rcpt{k}.example.net" for k in range(4)]
SCOPES = ["--scope", "send", "--scope", "read", "--scope", "admin"]


@dataclass
class Figures:
    route: str
    delivered: float = 0.0  # emails/s, first to last SENT
    cpu_us: float = 0.0  # worker CPU per email
    dkim_us: float | None = None  # signing time per message (worker metrics)
    signatures: int = 0
    signed_messages: int = 0
    check: str = ""  # the kept message's verdict
    dns_queries: int = 0  # answered by the DNS server while the workers drained
    notes: list[str] = field(default_factory=list)


class Sinks:
    """smtp-sink on each MX host address at one port, plus one that keeps what it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dump = Path(tempfile.mkdtemp(prefix="postwire-bench-sink-"))
        self.dump.chmod(0o777)  # smtp-sink writes as nobody
        self.procs = [smtp_sink(self.port, address) for address in MX_HOSTS.values()]
        self.procs.append(smtp_sink(self.port, CHECK_ADDRESS, "-d", str(self.dump / "%H%M%S.")))
        time.sleep(0.3)
        for proc in self.procs:
            if proc.poll() is not None:
                raise SystemExit(f"smtp-sink exited {proc.returncode}")

    def kept(self) -> list[Path]:
        return sorted(self.dump.iterdir())

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        shutil.rmtree(self.dump, ignore_errors=True)


def publish_zone(dns: DnsServer) -> None:
    for host, address in MX_HOSTS.items():
        dns.add(host, "A", address)
    for k, domain in enumerate(RECIPIENT_DOMAINS):
        dns.add(domain, "MX", f"10 {list(MX_HOSTS)[k % len(MX_HOSTS)]}.")
    dns.add(CHECK_DOMAIN, "MX", f"10 {CHECK_HOST}.")
    dns.add(CHECK_HOST, "A", CHECK_ADDRESS)


def verified_domain(stack: BenchStack, key: str, dns: DnsServer) -> domain_pb2.Domain:
    """CreateDomain, publish its DKIM record(s), VerifyDomain: VERIFIED or exit."""
    metadata = (("x-api-key", key),)
    with grpc.insecure_channel(stack.address) as channel:
        stub = domain_service_pb2_grpc.DomainServiceStub(channel)
        created = stub.CreateDomain(dpb.CreateDomainRequest(name=SENDER_DOMAIN), metadata=metadata, timeout=30).domain
        for record in created.records:
            if record.purpose == domain_pb2.DNS_RECORD_PURPOSE_DKIM:
                dns.set(record.name, "TXT", record.value)
        verified = stub.VerifyDomain(dpb.VerifyDomainRequest(domain_id=created.domain_id), metadata=metadata,
                                     timeout=30).domain
    if verified.state != domain_pb2.DOMAIN_STATE_VERIFIED:
        raise SystemExit(f"VerifyDomain did not verify {SENDER_DOMAIN}: {verified}")
    return verified


async def accept(stack: BenchStack, key: str, n: int, body: str, sender: str, concurrency: int = 64) -> float:
    """n Sends over gRPC, closed loop; recipients spread over RECIPIENT_DOMAINS; emails/s."""
    async with grpc.aio.insecure_channel(stack.address) as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)
        metadata = (("x-api-key", key),)
        queue = iter(range(n))

        async def client() -> None:
            for i in queue:
                request = pb.SendRequest(from_address=sender, to=[f"rcpt{i}@{RECIPIENT_DOMAINS[i % len(RECIPIENT_DOMAINS)]}"],
                                         subject=f"bench {i}", text_body=body)
                await stub.Send(request, metadata=metadata, timeout=60)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


def sent_count(stack: BenchStack) -> int:
    with stack.sql() as conn:
        return conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0]


def scrape(port: int) -> dict[str, float]:
    """The worker's dkim metric families (sample name -> value), {} if unreachable."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("postwire_dkim_") and "_bucket" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def start_workers(stack: BenchStack, count: int) -> tuple[list[int], list[int]]:
    """`count` worker processes, each with a Prometheus port of its own: (pids, ports)."""
    pids, ports = [], []
    for i in range(count):
        port = free_port()
        env = {**stack.env, "POSTWIRE_WORKER_METRICS_PORT": str(port)}
        proc = Process(["worker"], env, stack.logs / f"worker{i}.log")
        stack.procs.append(proc)
        stack.pids[f"worker{i}"] = proc.proc.pid
        pids.append(proc.proc.pid)
        ports.append(port)
    return pids, ports


def check_kept_message(stack: BenchStack, key: str, sinks: Sinks, dns: DnsServer, body: str) -> str:
    """One more email, to the sink that keeps messages; its DKIM verdict(s) by dkimpy."""
    from tests.support import dkim_judge

    before = sent_count(stack)
    with grpc.insecure_channel(stack.address) as channel:
        email_service_pb2_grpc.EmailServiceStub(channel).Send(
            pb.SendRequest(from_address=f"orders@{SENDER_DOMAIN}", to=[f"check@{CHECK_DOMAIN}"], subject="dkim check",
                           text_body=body),
            metadata=(("x-api-key", key),), timeout=30,
        )
    wait_until(lambda: sent_count(stack) > before, timeout=60)
    wait_until(lambda: bool(sinks.kept()), timeout=10)
    raw = sinks.kept()[-1].read_bytes()
    # smtp-sink puts X-Client-*/X-Helo-*/X-Mail-*/X-Rcpt-* lines before the message
    verdicts = dkim_judge.dkimpy(raw, dns)
    for path in sinks.kept():
        path.unlink()
    return ", ".join(v.result for v in verdicts) or "no DKIM-Signature"


def route_run(route: str, dkim: bool, n: int, workers: int, threads: int, size: int, sinks: Sinks,
              dns: DnsServer) -> Figures:
    body = ("Lorem ipsum dolor sit amet. " * (size // 28 + 1))[:size]
    label = f"{route}{' + DKIM' if dkim else ', no DKIM'}"
    figures = Figures(label)
    settings = {
        "server_processes": "2",
        "delivery_route": route,
        "require_verified_domains": "true" if dkim else "false",
        "dns_servers": json.dumps([dns.host]),
        "dns_port": str(dns.port),
        "dns_timeout": "2",
        "mx_port": str(sinks.port),
        "mx_starttls": "false",
        "sending_host": "mta.example.com",
        "smtp_host": "127.0.0.1",  # the relay: the first MX sink, the same one Postfix relays to
        "smtp_port": str(sinks.port),
    }
    with bench_stack(0, threads, **settings) as stack:
        key = run(["keys", "create", "--name", "bench-admin", *SCOPES], stack.env).strip()
        sender = "bench@example.com"
        if dkim:
            verified_domain(stack, key, dns)
            sender = f"orders@{SENDER_DOMAIN}"
        asyncio.run(accept(stack, key, n, body, sender))
        queries_before = len(dns.queries)
        pids, ports = start_workers(stack, workers)
        with stack.sql() as conn:
            count = lambda: conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0]  # noqa: E731
            wait_until(lambda: count() > 0)
            first_sent, cpu_before = count(), sum(cpu_seconds(p) for p in pids)
            wait_until(lambda: count() >= n)
            cpu_used = sum(cpu_seconds(p) for p in pids) - cpu_before
            figures.dns_queries = len(dns.queries) - queries_before
            first, last = conn.execute(
                "SELECT min(sent_at), max(sent_at) FROM emails WHERE status = 'sent'").fetchone()
        figures.delivered = n / (last - first).total_seconds()
        figures.cpu_us = cpu_used / max(1, n - first_sent) * 1e6
        scraped = [scrape(p) for p in ports]
        if all(scraped) and dkim:
            seconds = sum(s.get("postwire_dkim_sign_seconds_sum", 0.0) for s in scraped)
            figures.signed_messages = int(sum(s.get("postwire_dkim_sign_seconds_count", 0.0) for s in scraped))
            figures.signatures = int(sum(s.get("postwire_dkim_signatures_total", 0.0) for s in scraped))
            if figures.signed_messages:
                figures.dkim_us = seconds / figures.signed_messages * 1e6
        elif dkim:
            figures.notes.append("worker metrics unreachable: no DKIM timing")
        if dkim and route == "mx":  # relayed mail all goes to the relay sink, which keeps nothing
            figures.check = check_kept_message(stack, key, sinks, dns, body)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    sinks = Sinks()
    rows: list[Figures] = []
    try:
        with DnsServer() as dns:
            publish_zone(dns)
            for route, dkim in (("mx", True), ("relay", True), ("relay", False)):
                rows.append(route_run(route, dkim, args.n, args.workers, args.threads, args.size, sinks, dns))
        postfix = postfix_relay_rate(args.n, args.size, sinks.port)
    finally:
        sinks.stop()
    print(f"emails: {args.n} x ~{args.size} B, {args.workers} workers x {args.threads} threads, {os.cpu_count()} cores; "
          f"{len(RECIPIENT_DOMAINS)} recipient domains over {len(MX_HOSTS)} MX hosts (smtp-sink on loopback)")
    print(f"{'route':<16} {'delivered/s':>11} {'CPU µs/email':>13} {'DKIM µs/msg':>12} {'vs Postfix':>11}")
    for f in rows:
        dkim = f"{f.dkim_us:12.0f}" if f.dkim_us is not None else f"{'—':>12}"
        print(f"{f.route:<16} {f.delivered:11.0f} {f.cpu_us:13.0f} {dkim} {f.delivered / postfix:11.3f}")
    print(f"{'Postfix relay':<16} {postfix:11.0f} {'—':>13} {'—':>12} {1.0:11.3f}  (smtp-source → Postfix queue → sink; no DKIM)")
    for f in rows:
        line = []
        if f.signed_messages:
            line.append(f"{f.signed_messages} messages signed ({f.signatures} signatures)")
        if f.check:
            line.append(f"the message kept at the sink verified by dkimpy: {f.check}")
        if f.route.startswith("mx"):
            line.append(f"{f.dns_queries} DNS queries while draining ({f.dns_queries / args.n:.2f} per email)")
        if line:
            print(f"{f.route}: " + "; ".join(line))
        for note in f.notes:
            print(f"{f.route}: {note}")
    print("CPU: worker processes from the first to the last SENT, per email SENT in between; "
          "DKIM: signing time (wall) per message, from the workers' postwire_dkim_sign_seconds")


if __name__ == "__main__":
    main()
