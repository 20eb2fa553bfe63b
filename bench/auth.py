"""The cost of authentication and rate limiting per request, against references run in
the same invocation:

  health   grpc.health Check: no auth, no limits, no database (the floor)
  auth     GetStatus with rate limits off: API key auth (cached key) + one query
  limited  GetStatus with rate limits on: the same + one Redis Lua check per call

    .venv/bin/python bench/auth.py [-n 4000] [--concurrency 32] [--profile DIR]

Besides throughput it prints the server process's CPU time per request (the figure
that matters on shared cores: wall-clock throughput moves with whatever else runs).
--profile DIR records a py-spy profile (raw, folded) of the server for each row.

Needs PostgreSQL and Redis (make services). Uses its own database and Redis prefix.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from accept import cpu_seconds, percentiles  # noqa: E402

from postwire.v1 import email_service_pb2, email_service_pb2_grpc  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import Process, base_env, run, wait_serving  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def measure(call, n: int, concurrency: int, pid: int, profile: Path | None = None) -> tuple[float, float, float, float]:  # noqa: ANN001
    """(requests/s, p50 ms, p99 ms, server CPU µs per request) of n calls at a fixed
    concurrency (closed loop)."""
    latencies: list[float] = []

    def one(_: int) -> None:
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)

    for _ in range(200):  # warm up connections and caches
        call()
    spy = None
    if profile is not None:
        spy = subprocess.Popen([str(REPO / ".venv/bin/py-spy"), "record", "-o", str(profile), "-f", "raw",
                                "--pid", str(pid), "-d", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    p = percentiles(latencies)
    return n / elapsed, p[50] * 1000, p[99] * 1000, cpu / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", type=Path, help="directory for py-spy profiles of the server")
    args = parser.parse_args()
    os.chdir(REPO)
    db = f"postwire_bench_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    logs = Path(tempfile.mkdtemp(prefix="postwire-bench-auth-"))
    env = base_env(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        queue_prefix=f"benchauth_{secrets.token_hex(3)}",
        secret_key=secrets.token_urlsafe(32),
        read_per_minute="100000000",
        account_read_per_minute="100000000",
    )
    results = {}
    try:
        run(["migrate"], env)
        key = run(["keys", "create", "--name", "bench"], env).strip()
        for name, limits in (("auth", "false"), ("limited", "true")):
            port = free_port()
            server = Process(["server"], {**env, "POSTWIRE_GRPC_PORT": str(port), "POSTWIRE_RATE_LIMITS": limits},
                             logs / f"{name}.log")
            try:
                address = f"127.0.0.1:{port}"
                wait_serving(address, server)
                channel = grpc.insecure_channel(address)
                stub = email_service_pb2_grpc.EmailServiceStub(channel)
                request = email_service_pb2.GetStatusRequest(message_id="msg_bench")

                def get_status() -> None:
                    try:
                        stub.GetStatus(request, metadata=(("x-api-key", key),))
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.NOT_FOUND, error

                pid = server.proc.pid

                def where(row: str) -> Path | None:
                    return args.profile / f"{row}.txt" if args.profile else None

                if name == "auth":
                    health = health_pb2_grpc.HealthStub(channel)
                    results["health"] = measure(lambda: health.Check(health_pb2.HealthCheckRequest()), args.n,
                                                args.concurrency, pid, where("health"))
                results[name] = measure(get_status, args.n, args.concurrency, pid, where(name))
                channel.close()
            finally:
                server.stop()
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(f"{args.n} calls per row, {args.concurrency} in flight, {os.cpu_count()} cores (client on the same cores)")
    print(f"{'':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'µs/req':>8} {'CPU µs':>8}")
    for name, (rate, p50, p99, cpu) in results.items():
        print(f"{name:10} {rate:8.0f} {p50:8.2f} {p99:8.2f} {1e6 / rate:8.0f} {cpu:8.0f}")
    auth, limited = results["auth"], results["limited"]
    print(f"rate limiting adds {1e6 / limited[0] - 1e6 / auth[0]:.0f} µs of server time per request "
          f"(limited/auth throughput ratio {limited[0] / auth[0]:.3f}), "
          f"{limited[3] - auth[3]:.0f} µs of server CPU")
    print(f"GetStatus (auth + query) vs health: throughput ratio {auth[0] / results['health'][0]:.3f}, "
          f"server CPU ratio {auth[3] / results['health'][3]:.2f}")


if __name__ == "__main__":
    main()
