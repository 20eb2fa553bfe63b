"""A SendStream backlog drains at the delivery rate, nothing lost: N emails streamed in
on one call (the SDK's send_stream) while two workers deliver to smtp-sink; then the
ledger: every acknowledged id is stored, SENT, once. Reference in the same run: the
workers' delivery rate over the same stack (first to last SENT) for a backlog of
--reference emails accepted (SendBatch) while no worker ran.

    .venv/bin/python bench/stream_drain.py [-n 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _stack import bench_stack, wait_until

from postwire.v1 import email_service_pb2 as pb
from postwire_client import AsyncClient


async def _stream(address: str, key: str, n: int) -> tuple[list[str], float]:
    requests = (pb.SendRequest(from_address="bench@example.com", to=[f"rcpt{i}@example.com"], subject="drain",
                               text_body="x" * 1500) for i in range(n))
    ids: list[str] = []
    start = time.perf_counter()
    async with AsyncClient(address, key) as client:
        async for ack in client.send_stream(requests):
            if ack.WhichOneof("result") != "accepted":
                raise SystemExit(f"email {ack.sequence} was refused: {ack.error}")
            ids.append(ack.accepted.message_id)
    return ids, time.perf_counter() - start


def _reference(stack, n: int, workers: int) -> float:  # noqa: ANN001
    """Delivered per second (first to last SENT) for n emails accepted while no worker ran."""
    stack.stop_workers()
    with stack.sql() as conn:
        after = conn.execute("SELECT coalesce(max(id), 0) FROM emails").fetchone()[0]

    async def accept() -> None:
        async with AsyncClient(stack.address, stack.key) as client:
            for start in range(0, n, 500):
                await client.send_batch([pb.SendRequest(from_address="bench@example.com", to=[f"ref{i}@example.com"],
                                                        subject="reference", text_body="x" * 1500)
                                         for i in range(start, min(n, start + 500))])

    asyncio.run(accept())
    stack.start_workers(workers)
    with stack.sql() as conn:
        query = "SELECT count(*) FILTER (WHERE status = 'sent'), min(sent_at), max(sent_at) FROM emails WHERE id > %s"
        wait_until(lambda: conn.execute(query, (after,)).fetchone()[0] >= n, timeout=1800, interval=0.5)
        sent, first, last = conn.execute(query, (after,)).fetchone()
    return sent / (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reference", type=int, default=20_000, help="emails of the reference backlog")
    args = parser.parse_args()
    with bench_stack(args.workers, threads=16) as stack:
        ids, accept_seconds = asyncio.run(_stream(stack.address, stack.key, args.n))
        with stack.sql() as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0] >= args.n,
                       timeout=1800, interval=0.5)
            stored, sent, distinct, first, last, accepted_last = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'sent'), count(DISTINCT public_id),"
                " min(sent_at), max(sent_at), max(created_at) FROM emails"
            ).fetchone()
            events = conn.execute("SELECT count(*) FROM events WHERE type = 'sent'").fetchone()[0]
            # Once the stream ended the workers had the cores to themselves: the backlog left then drains at
            backlog = conn.execute("SELECT count(*) FROM emails WHERE sent_at > %s", (accepted_last,)).fetchone()[0]
        reference = _reference(stack, args.reference, args.workers)
    drain = (last - first).total_seconds()
    behind = (last - accepted_last).total_seconds()
    print(f"{args.n} emails over one SendStream with {args.workers} workers delivering to smtp-sink")
    print(f"accepted: {args.n / accept_seconds:8.0f} emails/s ({accept_seconds:.1f} s, every one acknowledged)")
    print(f"delivered: {sent / drain:7.0f} emails/s (first to last SENT, {drain:.1f} s); "
          f"the last SENT {behind:.1f} s after the last accept")
    after = backlog / behind if behind > 0 else float("nan")
    print(f"after the stream: {after:7.0f} emails/s ({backlog} emails left when the last was accepted)")
    print(f"reference: {reference:7.0f} emails/s delivering a backlog of {args.reference} accepted with no worker running; "
          f"after the stream/reference: {after / reference:.2f}; first to last/reference: {sent / drain / reference:.2f}")
    print(f"ledger: {len(ids)} acks, {len(set(ids))} distinct ids; stored {stored} ({distinct} distinct), SENT {sent}, "
          f"SENT events {events}; lost {len(set(ids)) - sent}, duplicated {stored - len(set(ids))}")


if __name__ == "__main__":
    main()
