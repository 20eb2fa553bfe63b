"""SMTP submission throughput: many connections (32 by default), each submitting 1.5 KB
messages one after another over one authenticated connection, to `postwire submission`
on the full stack (PostgreSQL, RabbitMQ, Redis; no worker running: the accept path,
where 250 is answered once the email is durably stored). Beside it, on the same stack and
for the same messages: Send over gRPC from as many connections. Reference in the same
run: Postfix's own SMTP injection rate (its queue file fsynced before 250; messages held
in the queue, so nothing is delivered, the same as Postwire without workers), with the
same client code, plain and with STARTTLS, and with smtp-source.

    .venv/bin/python bench/submission.py [--seconds 10] [--connections 32] [--size 1536]
        [--submission-processes 1,2]

The submission rows run with 1 and with 2 listener processes (POSTWIRE_SUBMISSION_PROCESSES),
each line giving the listeners' CPU time per message (the figure that does not depend on
what else the machine runs).

Needs the services (make services) and Postfix (scripts/ensure-services.sh --with-postfix);
configures the machine's Postfix for the run (bench/postfix_ref.py) and stops it again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from _smtp_load import Load, smtp_load
from _stack import bench_stack
from accept import TICKS, closed_loop, cpu_seconds, quantiles, server_children, usage
from postfix_ref import postfix_running

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc
from postwire_service.dev_tls import self_signed
from tests.support.ports import free_port
from tests.support.processes import Process, wait_listening

HOLD = "smtpd_recipient_restrictions=check_client_access static:HOLD"  # accepted, fsynced, never delivered
SPOOL = Path("/var/spool/postfix")


def line(name: str, load: Load) -> str:
    failed = f"  failed: {load.errors}" if load.errors else ""
    latency = quantiles(load.latencies) if len(load.latencies) > 1 else "no replies"
    return f"{name:<34} {load.rate:7.0f} msgs/s  {latency}  (client {load.client_cpu:3.0f}% CPU){failed}"


def held() -> int:
    return sum(1 for path in (SPOOL / "hold").rglob("*") if path.is_file())


def postfix_figures(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    cert, key = self_signed(tmp)
    tls = ("smtpd_tls_security_level=may", f"smtpd_tls_cert_file={cert}", f"smtpd_tls_key_file={key}")
    figures: dict[str, float] = {}
    # Nothing is relayed (HOLD): the relayhost is a port nobody listens on.
    with postfix_running(free_port(), HOLD, *tls):
        master = int((SPOOL / "pid" / "master.pid").read_text().split()[0])
        asyncio.run(smtp_load(25, 4, 1.0, run="pfwarm"))  # warm up
        for name, mode in (("plain", "none"), ("starttls", "starttls")):
            before, cpu, begun = held(), postfix_cpu(master), time.perf_counter()
            load = asyncio.run(smtp_load(25, args.connections, args.seconds, tls=mode, size=args.size, run=f"pf{mode}"))
            busy = (postfix_cpu(master) - cpu) / (time.perf_counter() - begun) * 100
            print(line(f"reference Postfix {name}", load))
            print(f"  Postfix processes {busy:3.0f}% CPU; {held() - before} messages in its hold queue")
            figures[name] = load.rate
        source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
        n = int(max(figures.values()) * args.seconds)
        begun = time.perf_counter()
        subprocess.run([source, "-s", str(args.connections), "-m", str(n), "-l", str(args.size),
                        "-f", "bench@example.com", "-t", "rcpt@example.com", "127.0.0.1:25"], check=True)
        figures["smtp-source"] = n / (time.perf_counter() - begun)
        print(f"{'reference smtp-source → Postfix':<34} {figures['smtp-source']:7.0f} msgs/s  ({n} messages)")
    return figures


def postfix_cpu(master: int) -> float:
    """CPU seconds of Postfix's master and its daemons (smtpd, cleanup, qmgr, ...): the
    live ones, and the exited ones the master has reaped."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(stat.parent.name) == master:
                total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICKS
            elif int(fields[1]) == master:
                total += (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, ValueError, IndexError):
            continue
    return total


async def grpc_send(address: str, key: str, args: argparse.Namespace) -> tuple[float, list[float]]:
    """Send over gRPC, the same message as the SMTP figures (text body of the same size)."""
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(args.connections)]
    try:
        stubs = [email_service_pb2_grpc.EmailServiceStub(channel) for channel in channels]
        body = ("The quick brown fox jumps over the lazy dog, again and again, 0123456789.\r\n" * 40)
        request = pb.SendRequest(from_address="Bench <bench@example.com>", to=["rcpt@example.com"],
                                 subject="bench", text_body=body[: args.size - 300])
        metadata = (("x-api-key", key),)
        turn = iter(range(1 << 62))

        async def send() -> None:
            await stubs[next(turn) % len(stubs)].Send(request, metadata=metadata)

        await closed_loop(send, 8, 1.0)  # warm up
        return await closed_loop(send, args.connections, args.seconds)
    finally:
        for channel in channels:
            await channel.close()


def stored(stack) -> int:  # noqa: ANN001
    with stack.sql() as conn:
        return conn.execute("SELECT count(*) FROM emails").fetchone()[0]


def listener_pids(parent: int) -> list[int]:
    """The listener processes: the command itself, or its children when it runs several
    (POSTWIRE_SUBMISSION_PROCESSES; multiprocessing's resource tracker left out)."""
    try:
        children = [int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    except OSError:
        children = []
    listeners = [c for c in children if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
    return listeners or [parent]


def start_listener(stack, processes: int, tls: dict[str, str], name: str) -> tuple[Process, dict[str, int]]:  # noqa: ANN001
    ports = {"submission_port": free_port(), "submission_tls_port": free_port(), "submission_plain_port": free_port()}
    env = {**stack.env, **{f"POSTWIRE_{k.upper()}": str(v) for k, v in ports.items()},
           **{f"POSTWIRE_{k.upper()}": v for k, v in tls.items()}, "POSTWIRE_SUBMISSION_PROCESSES": str(processes)}
    listener = Process(["submission"], env, stack.logs / f"{name}.log")
    stack.procs.append(listener)
    for port in ports.values():
        wait_listening(port, listener, timeout=120)
    deadline = time.monotonic() + 120
    while processes > 1 and f"({processes} processes)" not in listener.log():  # every one listening
        listener.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"submission listeners not all listening:\n{listener.log()}")
        time.sleep(0.1)
    return listener, ports


def postwire_figures(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    cert, key = self_signed(tmp)
    tls = {"submission_tls_cert": str(cert), "submission_tls_key": str(key), "submission_allow_plain_auth": "true",
           "submission_metrics_port": "0"}
    figures: dict[str, float] = {}
    with bench_stack(0, server_processes=str(args.processes), **tls) as stack:  # no worker: the accept path
        pids = {name: pid for name, pid in stack.pids.items() if name != "server"}
        pids.update(server_children(stack.pids["server"]) or {"server": stack.pids["server"]})
        before, begun = {n: cpu_seconds(p) for n, p in pids.items()}, time.perf_counter()
        rate, latencies = asyncio.run(grpc_send(stack.address, stack.key, args))
        print(f"{'postwire Send (gRPC)':<34} {rate:7.0f} msgs/s  {quantiles(latencies)}")
        print(f"  {usage(pids, before, time.perf_counter() - begun)}")
        figures["grpc"] = rate

        for processes in args.submission_processes:
            listener, ports = start_listener(stack, processes, tls, f"submission-{processes}")
            listeners = {f"submission-{i}": pid for i, pid in enumerate(listener_pids(listener.proc.pid))}
            watched = {**pids, **listeners}
            asyncio.run(smtp_load(ports["submission_plain_port"], 4, 1.0, key=stack.key, run=f"warm{processes}"))
            runs = (("plain", "submission_plain_port", "none"), ("starttls", "submission_port", "starttls"),
                    ("implicit TLS", "submission_tls_port", "implicit"))
            for name, port, mode in runs:
                before, count, begun = {n: cpu_seconds(p) for n, p in watched.items()}, stored(stack), time.perf_counter()
                load = asyncio.run(smtp_load(ports[port], args.connections, args.seconds, key=stack.key, tls=mode,
                                             size=args.size, run=f"pw{processes}{port}"))
                elapsed = time.perf_counter() - begun
                print(line(f"postwire submission {name} ×{processes}", load))
                print(f"  {usage(watched, before, elapsed)}")
                cpu = sum(cpu_seconds(p) - before[n] for n, p in listeners.items())
                per = cpu / len(load.latencies) * 1000 if load.latencies else 0.0
                ids = [m.group(1) for reply in load.ids if (m := re.search(r"id=(\S+)", reply))]
                print(f"  {stored(stack) - count} emails stored; {len(set(ids))} distinct ids in {len(load.ids)} 250"
                      f" replies; listener CPU {per:.2f} ms per message")
                figures[f"{name} x{processes}"] = load.rate
            listener.stop()
            stack.procs.remove(listener)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--size", type=int, default=1536, help="message size in octets")
    parser.add_argument("--processes", type=int, default=2, help="gRPC server processes (POSTWIRE_SERVER_PROCESSES)")
    parser.add_argument("--submission-processes", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2],
                        help="submission listener processes to measure, comma-separated"
                             " (POSTWIRE_SUBMISSION_PROCESSES; default 1,2)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load generator on the same machine; {args.connections} connections, "
          f"{args.size} B messages, {args.seconds:.0f} s per row")
    tmp = Path(tempfile.mkdtemp(prefix="postwire-bench-submission-"))
    postfix = postfix_figures(args, tmp)
    postwire = postwire_figures(args, tmp)
    for processes in args.submission_processes:
        plain, starttls = postwire[f"plain x{processes}"], postwire[f"starttls x{processes}"]
        print(f"ratio submission ×{processes}/Postfix (same client): plain {plain / postfix['plain']:.2f}   "
              f"STARTTLS {starttls / postfix['starttls']:.2f}   (vs smtp-source → Postfix "
              f"{plain / postfix['smtp-source']:.2f});  submission ×{processes}/gRPC Send {plain / postwire['grpc']:.2f}")

if __name__ == "__main__":
    main()
