"""Open and click tracking: hits per second through the real Envoy against the tracking
handler (server/tracking_http.py, recording each hit in PostgreSQL), with the reference
in the same run: the same requests with a made-up token, which Envoy routes to the same
handler and the handler refuses (404) before any database work. Then the rewrite cost
per email: rendering an email with the pixel and tracked links (core.tracking) against
rendering it untracked.

    .venv/bin/python bench/tracking.py [--seconds 5] [--connections 16] [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.emails.content import Address, EmailContent  # noqa: E402
from core.emails.mime import render  # noqa: E402
from core.tracking.apply import Tracker  # noqa: E402
from core.tracking.tokens import CLICK, OPEN, Claim, TrackingTokens  # noqa: E402
from tests.support.envoy import run_envoy  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.stack import fresh_database  # noqa: E402

SECRET = "bench tracking secret"
DATE = datetime(2024, 12, 3, 9, 15, tzinfo=UTC)
PARAGRAPH = "Thanks for your order. Your parcel leaves our warehouse today and should arrive within three days. "


def _serve(url: str, port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from core.storage.db import make_engine
    from core.tracking.hits import Hits
    from core.tracking.record import HitRecorder
    from server.tracking_http import TrackingEndpoint

    async def main() -> None:
        engine = make_engine(url)
        endpoint = TrackingEndpoint(Hits(TrackingTokens(SECRET), HitRecorder(engine), frozenset({"127.0.0.1"}), 0),
                                    "127.0.0.1", port)
        await endpoint.start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _load(port: int, path: str, seconds: float, connections: int) -> tuple[float, dict[int, int]]:
    request = (f"GET {path} HTTP/1.1\r\nhost: bench\r\nuser-agent: Mozilla/5.0 bench\r\n\r\n").encode()
    statuses: dict[int, int] = {}
    end = time.monotonic() + seconds

    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.monotonic() < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
            done += 1
        writer.close()
        return done

    started = time.monotonic()
    total = sum(await asyncio.gather(*(one() for _ in range(connections))))
    return total / (time.monotonic() - started), statuses


def _email(i: int) -> EmailContent:
    links = "".join(f'<p><a href="https://shop.example/item/{k}?order={i}&amp;ref=mail">Item {k}</a></p>' for k in range(5))
    html = "<html><body>" + f"<p>{PARAGRAPH}</p>\n" * 12 + links + "</body></html>\n"
    return EmailContent(from_address=Address("orders@bench.example.com", "Bench Shop"),
                        to=(Address(f"customer{i}@example.org"),), subject=f"Order {i}",
                        text_body=PARAGRAPH * 16, html_body=html)


def _rewrite_cost(n: int) -> tuple[float, float]:
    tracker = Tracker(TrackingTokens(SECRET), "https://t.example.com", None)
    emails = [_email(i) for i in range(n)]
    started = time.process_time()
    for i, content in enumerate(emails):
        render(content, message_id=f"msg_{i}@bench.example.com", date=DATE)
    plain = (time.process_time() - started) / n
    started = time.process_time()
    for i, content in enumerate(emails):
        tracked = tracker.rewrite(content, 1, f"msg_{i:024d}", 0, True, True)
        render(tracked, message_id=f"msg_{i}@bench.example.com", date=DATE)
    return plain * 1e6, (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("-n", type=int, default=2000, help="emails for the rewrite cost")
    args = parser.parse_args()

    import asyncio as _asyncio

    from sqlalchemy import insert

    from core.storage.db import accounts, emails, make_engine
    from core.storage.migrate import upgrade
    from core.times import utcnow

    with fresh_database("postwire_bench_tracking") as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)

        async def seed() -> int:
            engine = make_engine(url)
            now = utcnow()
            async with engine.begin() as conn:
                account = (await conn.execute(insert(accounts).values(name="bench", created_at=now)
                                              .returning(accounts.c.id))).scalar_one()
                await conn.execute(insert(emails).values(
                    public_id="msg_" + "b" * 24, account_id=account, status="sent", content={}, created_at=now,
                    updated_at=now, recipients={"r@example.org": {"status": "sent", "code": 250, "message": ""}},
                    attempts=1, last_error=""))
            await engine.dispose()
            return int(account)

        account = _asyncio.run(seed())
        tokens = TrackingTokens(SECRET)
        opened = "/t/o/" + tokens.make(Claim(OPEN, account, "msg_" + "b" * 24, 0))
        clicked = "/t/c/" + tokens.make(Claim(CLICK, account, "msg_" + "b" * 24, 0, "https://shop.example/item/1?x=1"))
        made_up = "/t/c/" + TrackingTokens("another secret").make(Claim(CLICK, account, "msg_" + "b" * 24, 0, "https://x"))

        port = free_port()
        ready = multiprocessing.get_context("spawn").Event()
        handler = multiprocessing.get_context("spawn").Process(target=_serve, args=(url, port, ready), daemon=True)
        handler.start()
        try:
            ready.wait(30)
            with run_envoy(free_port(), tmp, tracking_port=port) as envoy:
                rates = {}
                for name, path in (("reference: made-up token, 404 before the database", made_up),
                                   ("opens (pixel, OPENED recorded)", opened),
                                   ("clicks (302, CLICKED recorded)", clicked)):
                    rate, statuses = _asyncio.run(_load(envoy.http_port, path, args.seconds, args.connections))
                    rates[name] = rate
                    print(f"{name}: {rate:,.0f}/s  (answers {statuses})", flush=True)
        finally:
            handler.terminate()
            handler.join(10)
        reference = next(iter(rates.values()))
        for name, rate in list(rates.items())[1:]:
            print(f"  {name.split(' ')[0]}: {rate / reference:.2f}x the reference")

    plain, tracked = _rewrite_cost(args.n)
    print(f"render untracked: {plain:,.0f} µs/email; pixel + 5 tracked links + render: {tracked:,.0f} µs/email"
          f" (rewrite adds {tracked - plain:,.0f} µs, {tracked / plain:.2f}x)")


if __name__ == "__main__":
    main()
