"""Many sends from the CLI: `--batch` lines to requests, sent over one SendStream
(`--count`: Sends with a bounded number in flight), ids in input order, progress on
stderr."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from google.protobuf import json_format

from postwire.v1 import email_service_pb2 as pb
from postwire_client.aio import AsyncClient
from postwire_client.errors import (
    PermissionDenied,
    PostwireError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    from_send_error,
)
from postwire_client.progress import Progress
from postwire_client.retry import new_idempotency_key

# Errors every later request would hit too: the run stops at the first.
FATAL = (Unauthenticated, PermissionDenied, Unavailable)


def batch_requests(base: pb.SendRequest, lines: list[str], key: str) -> list[pb.SendRequest]:
    """One request per non-empty line: a JSON object of SendRequest fields (proto JSON,
    merged over `base`; lists replace) or a bare recipient address (`to`). With `key`,
    request n gets the idempotency key `<key>-<n>` unless its line sets one."""
    requests: list[pb.SendRequest] = []
    for number, line in enumerate((line.strip() for line in lines), start=1):
        if not line:
            continue
        request = pb.SendRequest()
        request.CopyFrom(base)
        if line.startswith("{"):
            try:
                values = json.loads(line)
                overlay = json_format.ParseDict(values, pb.SendRequest())
            except (ValueError, json_format.ParseError) as exc:
                raise SystemExit(f"error: batch line {number}: {exc}") from None
            for field in overlay.DESCRIPTOR.fields:
                if field.name in values or field.json_name in values:
                    request.ClearField(field.name)
            request.MergeFrom(overlay)
        else:
            del request.to[:]
            request.to.append(line)
        if key and not request.idempotency_key:
            request.idempotency_key = f"{key}-{len(requests) + 1}"
        requests.append(request)
    return requests


async def send_many(client: AsyncClient, requests: list[pb.SendRequest], concurrency: int, progress: Progress,
                    out: TextIO | None = None) -> int:
    """Send `requests` with `concurrency` in flight; ids go to `out` in input order
    (an empty line for a request that failed, its error on stderr). A rate limit waits
    out its retry-after; an error every request would hit stops the run."""
    out = out or sys.stdout
    for request in requests:  # a key per request, kept across its retries: never a duplicate
        if not request.idempotency_key:
            request.idempotency_key = new_idempotency_key()
    results: list[str | None] = [None] * len(requests)
    done = [False] * len(requests)
    printed = 0
    failed = 0
    fatal: PostwireError | None = None
    pending = iter(range(len(requests)))

    def flush() -> None:
        nonlocal printed
        while printed < len(requests) and done[printed]:
            print(results[printed] or "", file=out, flush=True)
            printed += 1

    async def worker() -> None:
        nonlocal failed, fatal
        for index in pending:
            if fatal is not None:
                return
            while True:
                try:
                    results[index] = (await client.send(requests[index])).message_id
                    progress.advance(ok=True)
                    break
                except ResourceExhausted as exc:  # the rate limit: wait it out, same key, no duplicate
                    progress.throttled(exc.retry_after or 1.0)
                    await asyncio.sleep(exc.retry_after or 1.0)
                except PostwireError as exc:
                    failed += 1
                    progress.advance(ok=False)
                    print(f"request {index + 1}: {exc}", file=sys.stderr)
                    if isinstance(exc, FATAL):
                        fatal = exc
                    break
            done[index] = True
            flush()

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    progress.finish()
    if fatal is not None:
        print(f"error: stopped after {fatal.code.name}; {len(requests) - progress.done} requests not sent",
              file=sys.stderr)
    return 1 if failed or fatal else 0


async def stream_many(client: AsyncClient, requests: list[pb.SendRequest], progress: Progress,
                      out: TextIO | None = None) -> int:
    """Send `requests` over one SendStream (reconnecting and resending what was not
    acknowledged, with the same keys); output as `send_many`. The server paces the stream
    to the rate limit, so nothing here waits on it."""
    out = out or sys.stdout
    results: list[str | None] = [None] * len(requests)
    done = [False] * len(requests)
    printed = failed = 0

    def flush() -> None:
        nonlocal printed
        while printed < len(requests) and done[printed]:
            print(results[printed] or "", file=out, flush=True)
            printed += 1

    try:
        async for ack in client.send_stream(requests):
            index = ack.sequence
            if ack.WhichOneof("result") == "accepted":
                results[index] = ack.accepted.message_id
                progress.advance(ok=True)
            else:
                failed += 1
                progress.advance(ok=False)
                print(f"request {index + 1}: {from_send_error(ack.error)}", file=sys.stderr)
            done[index] = True
            flush()
    except PostwireError as exc:  # the whole call: a bad key, say
        first = done.index(False)
        print(f"request {first + 1}: {exc}", file=sys.stderr)
        progress.advance(ok=False)
        progress.finish()
        print(f"error: stopped after {exc.code.name}; {len(requests) - progress.done} requests not sent",
              file=sys.stderr)
        return 1
    progress.finish()
    return 1 if failed else 0
