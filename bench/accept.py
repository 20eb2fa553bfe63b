"""Accept path: Send RPCs over gRPC to the full stack (PostgreSQL, RabbitMQ, Redis, auth
and rate limiting on with a high limit; two server processes, no worker running),
closed loop at fixed concurrency and open loop at fixed offered rates. Reference in the same run: a bare grpc.aio echo server.
Prints throughput, latency p50/p90/p99/max, and CPU and RSS of each process.

    .venv/bin/python bench/accept.py [--seconds 10] [--concurrency 64] [--rates 200,500,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc
from _stack import bench_stack

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc
from tests.support.ports import free_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(values: list[float]) -> dict[int, float]:
    """p50, p90 and p99 of `values` (the inclusive method: never past the maximum)."""
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {50: q[49], 90: q[89], 99: q[98]}


def quantiles(latencies: list[float]) -> str:
    p = percentiles(latencies)
    return f"p50 {p[50]:6.1f}  p90 {p[90]:6.1f}  p99 {p[99]:6.1f}  max {max(latencies):6.1f} ms"


async def closed_loop(call, concurrency: int, seconds: float) -> tuple[float, list[float]]:  # noqa: ANN001
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


async def open_loop(call, rate: float, seconds: float) -> tuple[float, list[float], dict[str, int]]:  # noqa: ANN001
    """Calls start on schedule whether or not earlier ones answered; returns the rate
    of successful calls, their latencies, and the failures by status code."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    tasks = []
    start = time.perf_counter()

    async def one() -> None:
        begun = time.perf_counter()
        try:
            await call()
        except grpc.aio.AioRpcError as exc:
            errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
            return
        latencies.append((time.perf_counter() - begun) * 1000)

    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return len(latencies) / (time.perf_counter() - start), latencies, errors


def usage(pids: dict[str, int], before: dict[str, float], elapsed: float) -> str:
    parts = []
    for name, pid in pids.items():
        cpu = (cpu_seconds(pid) - before[name]) / elapsed * 100
        parts.append(f"{name} {cpu:3.0f}% CPU {rss_mb(pid):4.0f} MB")
    return "; ".join(parts)


async def run(args: argparse.Namespace) -> None:
    print(f"{os.cpu_count()} cores; load generator on the same machine; {args.seconds:.0f} s per row")
    port = free_port()
    echo = subprocess.Popen([sys.executable, str(Path(__file__).with_name("echo_server.py")), str(port)],
                            stdout=subprocess.PIPE)
    echo.stdout.readline()  # type: ignore[union-attr]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            method = channel.unary_unary("/bench.Echo/Echo")
            payload = b"x" * 200
            rate, lat = await closed_loop(lambda: method(payload), args.concurrency, args.seconds)
            print(f"reference echo   closed c={args.concurrency:<4} {rate:7.0f}/s  {quantiles(lat)}")
            echo_rate = rate
    finally:
        echo.terminate()
    # No worker runs: this measures the accept path alone (bench/deliver.py measures delivery,
    # and accept and delivery together).
    with bench_stack(0, server_processes=str(args.processes)) as stack:
        pids = {"server": stack.pids["server"], **{k: v for k, v in stack.pids.items() if k != "server"}}
        pids.update(server_children(stack.pids["server"]))
        # Several connections, as many clients would open: the kernel spreads
        # connections (not calls) across server processes.
        channels = [grpc.aio.insecure_channel(stack.address, options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(args.channels)]
        try:
            stubs = [email_service_pb2_grpc.EmailServiceStub(channel) for channel in channels]
            request = pb.SendRequest(from_address="bench@example.com", to=["rcpt@example.com"], subject="bench",
                                     text_body="x" * 2000)
            metadata = (("x-api-key", stack.key),)
            turn = iter(range(1 << 62))

            async def send() -> None:
                await stubs[next(turn) % len(stubs)].Send(request, metadata=metadata)

            await closed_loop(send, 8, 1.0)  # warm up
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            start = time.perf_counter()
            rate, lat = await closed_loop(send, args.concurrency, args.seconds)
            print(f"postwire Send    closed c={args.concurrency:<4} {rate:7.0f}/s  {quantiles(lat)}")
            print(f"  {usage(pids, before, time.perf_counter() - start)}")
            print(f"  ratio to the echo ceiling: {rate / echo_rate:.3f}")
            for offered in args.rates:
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                start = time.perf_counter()
                achieved, lat, errors = await open_loop(send, offered, args.seconds)
                failed = f"  failed: {errors}" if errors else ""
                print(f"postwire Send    open {offered:6.0f}/s {achieved:7.0f}/s  {quantiles(lat)}{failed}")
                print(f"  {usage(pids, before, time.perf_counter() - start)}")
        finally:
            for channel in channels:
                await channel.close()


def server_children(pid: int) -> dict[str, int]:
    """The server's worker processes when it runs several (POSTWIRE_SERVER_PROCESSES)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return {}
    return {f"server-{i}": int(child) for i, child in enumerate(children)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[100.0, 200.0])
    parser.add_argument("--processes", type=int, default=2, help="server processes (POSTWIRE_SERVER_PROCESSES)")
    parser.add_argument("--channels", type=int, default=32,
                        help="client connections (the kernel spreads connections, not calls, over server processes)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
