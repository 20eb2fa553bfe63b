"""Event lag: from an event's commit (its occurred_at) to its arrival at a StreamEvents
subscriber, while emails are being sent and delivered at a fixed offered rate.
Reference in the same run: the lag of an idle stream (one email at a time).

    .venv/bin/python bench/stream.py [--rate 50] [--seconds 20]

Needs PostgreSQL, RabbitMQ and Redis (make services) and smtp-sink.
"""

from __future__ import annotations

import argparse
import os
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from _stack import bench_stack
from accept import percentiles

from postwire_client import Client


rates: list[float] = []  # events/s offered in each run (3 per email: queued, sending, sent)


def subscribe(address: str, key: str, expected: "multiprocessing.Value", out: "multiprocessing.Queue") -> None:
    """In its own process, so that the senders' threads do not delay its reads: the lag
    of every event from its commit (occurred_at) to its arrival here."""
    lags: list[float] = []
    with Client(address, key) as sub:
        for event in sub.stream_events(from_now=True, idle_timeout=5.0):
            arrived = datetime.now(UTC)
            lags.append((arrived - event.occurred_at.ToDatetime(tzinfo=UTC)).total_seconds() * 1000)
            if expected.value and len(lags) >= expected.value:
                break
    out.put(lags)


def lag_run(stack, rate: float, seconds: float) -> list[float]:  # noqa: ANN001
    spawn = multiprocessing.get_context("spawn")
    expected, out = spawn.Value("q", 0), spawn.Queue()
    subscriber = spawn.Process(target=subscribe, args=(stack.address, stack.key, expected, out), daemon=True)
    subscriber.start()
    time.sleep(2.0)  # the subscriber process starts and opens its stream
    sent = [0]
    # Open loop: sends start on schedule whether or not earlier ones have answered.
    with Client(stack.address, stack.key) as client, ThreadPoolExecutor(32) as pool:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            due = start + sent[0] / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(client.send, from_address="bench@example.com", to=["lag@example.com"], subject="lag",
                        text_body="x")
            sent[0] += 1
    elapsed = time.perf_counter() - start
    expected.value = sent[0] * 3
    lags = out.get(timeout=120)
    subscriber.join(timeout=10)
    rates.append(sent[0] * 3 / elapsed)
    return lags


def summary(lags: list[float]) -> str:
    p = percentiles(lags)
    return f"events {len(lags):6d}  p50 {p[50]:7.1f} ms  p90 {p[90]:7.1f} ms  p99 {p[99]:7.1f} ms  max {max(lags):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="emails/s offered (3 events each)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with bench_stack(server_processes="2") as stack:
        idle = lag_run(stack, 2.0, 5.0)
        loaded = lag_run(stack, args.rate, args.seconds)
    print(f"{os.cpu_count()} cores; subscriber, load generator and stack on the same machine")
    print(f"idle (2 emails/s):      {summary(idle)}")
    print(f"load ({args.rate:.0f} emails/s, {rates[-1]:.0f} events/s): {summary(loaded)}")
    print(f"p99 ratio load/idle: {percentiles(loaded)[99] / percentiles(idle)[99]:.2f}")


if __name__ == "__main__":
    main()
