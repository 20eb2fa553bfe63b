"""The chaos ledger at the peak accept rate: measure the peak (Send/s, closed loop, on a
bench stack shaped like the chaos stack: one server process, no worker), then run the
chaos ledger (tests/chaos/test_ledger.py) offering that rate while the faults strike:
by default a worker SIGKILL, a server SIGKILL and a RabbitMQ restart. The ledger must
still end with 0 lost (missing) emails.

DESTRUCTIVE: the ledger restarts this machine's RabbitMQ (and PostgreSQL and Redis if
those faults are chosen). `--measure-only` measures the peak and stops there.

    .venv/bin/python bench/ledger_peak.py [--rate R] [--faults worker-sigkill,server-sigkill,rabbitmq-restart]
                                          [--rounds 1] [--seconds 5] [--measure-only]
    make chaos-peak [CHAOS_RATE=R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys

from _stack import REPO, bench_stack
from history import better, send_phase

FAULTS = "worker-sigkill,server-sigkill,rabbitmq-restart"


def peak(seconds: float, concurrency: int) -> float:
    args = argparse.Namespace(seconds=seconds, concurrency=concurrency)
    with bench_stack(0, server_processes="1") as stack:
        return better(lambda: asyncio.run(send_phase(stack, args, "peak")))["rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, help="offer this rate instead of measuring the peak")
    parser.add_argument("--faults", default=FAULTS, help=f"CHAOS_FAULTS (default {FAULTS})")
    parser.add_argument("--rounds", type=int, default=1, help="CHAOS_ROUNDS: runs of each fault")
    parser.add_argument("--seconds", type=float, default=5.0, help="each peak measurement (the better of 2)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--measure-only", action="store_true", help="measure the peak; run no fault")
    args = parser.parse_args()
    rate = args.rate or peak(args.seconds, args.concurrency)
    print(f"peak accept rate: {rate:.0f} Send/s (one server process, closed loop c={args.concurrency})"
          if not args.rate else f"offered rate: {rate:.0f}/s (given)", flush=True)
    command = [sys.executable, "-m", "pytest", "tests/chaos", "-q", "-s", "-p", "no:cacheprovider"]
    env = {**os.environ, "CHAOS_RATE": f"{rate:.0f}", "CHAOS_FAULTS": args.faults, "CHAOS_ROUNDS": str(args.rounds)}
    print("ledger: " + " ".join(f"{k}={env[k]}" for k in ("CHAOS_RATE", "CHAOS_FAULTS", "CHAOS_ROUNDS"))
          + " " + " ".join(command[1:]), flush=True)
    if args.measure_only:
        return
    sys.exit(subprocess.run(command, cwd=REPO, env=env).returncode)


if __name__ == "__main__":
    main()
