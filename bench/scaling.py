"""Scaling: delivered emails/s with 1, 2 and 4 worker processes, and Send/s (closed loop)
with 1 and 2 server processes (POSTWIRE_SERVER_PROCESSES), each against the first row of
its table (the reference in the same run). CPU per email too: on shared cores a process
more may add throughput only while there is idle CPU left.

  delivery  a backlog of -n emails accepted while no worker runs, drained by k workers
            into smtp-sink (emails/s first to last SENT), then the workers stopped; the
            same stack (the most server processes) for every k
  Send      --seconds closed loop at --concurrency over 8 connections, the better of 2
            runs, on a stack with p server processes and no worker

    .venv/bin/python bench/scaling.py [-n 4000] [--workers 1,2,4] [--servers 1,2] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os

from _stack import bench_stack
from deliver import _accept
from history import better, deliver_phase, max_id, send_phase


def _send(stack, args: argparse.Namespace) -> dict:  # noqa: ANN001
    return better(lambda: asyncio.run(send_phase(stack, args, "scaling")))


def measure(args: argparse.Namespace) -> tuple[list[tuple[int, dict]], dict[int, dict]]:
    """Deliveries by worker count, and Send by server processes: the stack with the most
    server processes also serves the deliveries (one stack fewer to start)."""
    delivered, sent = [], {}
    body = ("Lorem ipsum dolor sit amet. " * 80)[:2000]
    most = max(args.servers)
    with bench_stack(0, args.threads, server_processes=str(most)) as stack:
        sent[most] = _send(stack, args)
        for k in args.workers:
            start = max_id(stack)
            asyncio.run(_accept(stack, args.n, body))
            delivered.append((k, deliver_phase(stack, argparse.Namespace(workers=k), start)))
    for p in sorted(set(args.servers) - {most}):
        with bench_stack(0, server_processes=str(p)) as stack:
            sent[p] = _send(stack, args)
    return delivered, dict(sorted(sent.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=4000, help="backlog per worker count")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--servers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--threads", type=int, default=16, help="threads per worker process")
    parser.add_argument("--seconds", type=float, default=6.0, help="each Send run (the better of 2)")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    delivered, sent = measure(args)
    print(f"{os.cpu_count()} cores shared by the load generator, services and Postwire; "
          f"{args.n} emails per delivery row, {args.threads} threads per worker")
    print(f"{'workers':>8} {'delivered/s':>12} {'vs 1':>6} {'worker µs CPU/email':>20}")
    base = delivered[0][1]["rate"]
    for k, f in delivered:
        print(f"{k:8d} {f['rate']:12.0f} {f['rate'] / base:6.2f} {f['worker_us']:20.0f}")
    print(f"{'servers':>8} {'Send/s':>12} {'vs 1':>6} {'server µs CPU/Send':>20}")
    base = next(iter(sent.values()))["rate"]
    for p, f in sent.items():
        print(f"{p:8d} {f['rate']:12.0f} {f['rate'] / base:6.2f} {f['server_us']:20.0f}")


if __name__ == "__main__":
    main()
