"""ListEmails at 1,000,000 stored emails: p50/p99 of one page (50 emails) through
gRPC for each filter kind, a page 20 deep through tokens, and references in the same
run (GetStatus by id, the unfiltered first page), with ratios.

The test account's 1,000,000 emails (and 200,000 of two other accounts, with the
same recipients and tags) are written by INSERT ... SELECT generate_series: created
times over 30 days, statuses mostly sent (bounced 5 %, failed 0.5 %, ...), 200,000
distinct recipients (5 emails each), 5 senders (one with half the mail), one or
two of 20 tags (from 60 % down to 0.1 %), metadata plan (4 values) and user
(100,000 values), a template on 30 %. Their email_terms rows are computed the way
the accept path does (core.emails.search_terms) through a table of every distinct
value's term, then the primary key is built. Target: every filtered page ≤ 50 ms p99.

    .venv/bin/python bench/search.py [--emails 1000000] [--calls 200] [--explain]

Needs PostgreSQL, RabbitMQ and Redis; a throwaway database (bench/_stack.py), no worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime

import grpc
from _stack import bench_stack
from accept import percentiles

from core.emails.search_terms import (
    METADATA,
    RECIPIENT,
    SENDER,
    TAG,
    metadata_term,
    term,
)
from postwire.v1 import email_pb2, email_service_pb2_grpc
from postwire.v1 import email_service_pb2 as pb

RECIPIENTS, SENDERS, USERS = 200_000, 5, 100_000
PLANS = ("free", "basic", "pro", "team")
# tag index → share of emails (first tag: by i % 1000 thresholds; second tag: tag 5 on 20 %)
TAGS = [f"tag{n}" for n in range(20)]
STATUS_CASE = """CASE WHEN h < 800 THEN 'sent' WHEN h < 850 THEN 'bounced' WHEN h < 855 THEN 'failed'
  WHEN h < 875 THEN 'suppressed' WHEN h < 900 THEN 'deferred' WHEN h < 950 THEN 'queued'
  WHEN h < 990 THEN 'canceled' ELSE 'scheduled' END"""
# Per-email attributes from the row number i (h: a spread of i in 0..999).
ATTRS = f"""
  SELECT i, a.account_id, (i * 7919) %% 1000 AS h,
    'user' || ((i * 104729) %% {RECIPIENTS}) || '@example.com' AS rcpt,
    'sender' || (CASE WHEN i %% 2 = 0 THEN 0 ELSE i %% {SENDERS} END) || '@example.com' AS sender,
    'tag' || (CASE WHEN (i * 31) %% 1000 < 600 THEN 0 WHEN (i * 31) %% 1000 < 800 THEN 1
                   WHEN (i * 31) %% 1000 < 900 THEN 2 WHEN (i * 31) %% 1000 < 999 THEN 3 + (i %% 16) ELSE 19 END) AS tag1,
    CASE WHEN (i * 17) %% 5 = 0 AND NOT ((i * 31) %% 1000 BETWEEN 900 AND 998 AND i %% 16 = 2) THEN 'tag5' END AS tag2,
    (ARRAY['free','basic','pro','team'])[1 + (i * 13) %% 4] AS plan,
    ((i * 7) %% {USERS})::text AS usr,
    CASE WHEN (i * 3) %% 10 < 3 THEN 'tpl_' || (i %% 10) END AS template_id,
    CAST(%(t0)s AS timestamptz) - (i::float8 / %(n)s) * interval '30 days' AS created_at
  FROM accounts_to_load a, generate_series(a.first, a.last) AS i
"""


def load(conn, account_id: int, n: int) -> None:  # noqa: ANN001
    started = time.monotonic()
    t0 = datetime.now(UTC)  # one time for both statements: a term's created_at is its email's
    others = [conn.execute("INSERT INTO accounts (name, created_at) VALUES (%s, now()) RETURNING id", (f"other{k}",)
                           ).fetchone()[0] for k in range(2)]
    conn.execute("CREATE TEMP TABLE accounts_to_load (account_id bigint, first bigint, last bigint)")
    spans = [(account_id, 1, n), (others[0], n + 1, n + n // 10), (others[1], n + n // 10 + 1, n + n // 5)]
    for span in spans:
        conn.execute("INSERT INTO accounts_to_load VALUES (%s, %s, %s)", span)
    conn.execute(f"""
      INSERT INTO emails (id, public_id, account_id, status, content, attempts, last_error, created_at, updated_at,
                          published_at, recipients, test_mode, template_id, template_version)
      SELECT i, 'msg_bench_' || i, account_id, {STATUS_CASE},
        json_build_object('from', json_build_object('email', sender, 'name', 'App'),
                          'to', json_build_array(json_build_object('email', rcpt, 'name', '')),
                          'cc', '[]'::json, 'bcc', '[]'::json, 'reply_to', null, 'subject', 'Order ' || i,
                          'text_body', 'x', 'html_body', '', 'headers', '{{}}'::json,
                          'tags', CASE WHEN tag2 IS NULL THEN json_build_array(tag1) ELSE json_build_array(tag1, tag2) END,
                          'metadata', json_build_object('plan', plan, 'user', usr), 'attachments', '[]'::json),
        1, '', created_at, created_at, created_at, '{{}}'::json, false, template_id,
        CASE WHEN template_id IS NOT NULL THEN 1 END
      FROM ({ATTRS}) g""", {"n": n, "t0": t0})
    conn.execute("SELECT setval(pg_get_serial_sequence('emails', 'id'), (SELECT max(id) FROM emails))")
    print(f"loaded {n + n // 5:,} emails in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    conn.execute("CREATE TEMP TABLE vals (kind text, value text, term text)")
    values = [(RECIPIENT, f"user{k}@example.com", term(RECIPIENT, f"user{k}@example.com")) for k in range(RECIPIENTS)]
    values += [(SENDER, f"sender{k}@example.com", term(SENDER, f"sender{k}@example.com")) for k in range(SENDERS)]
    values += [(TAG, t, term(TAG, t)) for t in TAGS]
    values += [(METADATA, f"plan={p}", metadata_term("plan", p)) for p in PLANS]
    values += [(METADATA, f"user={u}", metadata_term("user", str(u))) for u in range(USERS)]
    with conn.cursor().copy("COPY vals (kind, value, term) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)
    conn.execute("CREATE INDEX ON vals (kind, value)")
    conn.execute("ALTER TABLE email_terms DROP CONSTRAINT pk_email_terms")
    conn.execute(f"""
      INSERT INTO email_terms (account_id, term, created_at, email_id)
      SELECT g.account_id, v.term, g.created_at, g.i FROM ({ATTRS}) g
      CROSS JOIN LATERAL (VALUES ('{RECIPIENT}', rcpt), ('{SENDER}', sender), ('{TAG}', tag1), ('{TAG}', tag2),
                                 ('{METADATA}', 'plan=' || plan), ('{METADATA}', 'user=' || usr)) AS f(kind, value)
      JOIN vals v ON v.kind = f.kind AND v.value = f.value""", {"n": n, "t0": t0})
    conn.execute("ALTER TABLE email_terms ADD CONSTRAINT pk_email_terms PRIMARY KEY (account_id, term, created_at, email_id)")
    conn.execute("VACUUM ANALYZE emails")
    conn.execute("VACUUM ANALYZE email_terms")
    terms = conn.execute("SELECT count(*) FROM email_terms").fetchone()[0]
    print(f"wrote {terms:,} email_terms rows and their index in {time.monotonic() - started:.0f} s", flush=True)


def cases(now_ts: float) -> list[tuple[str, object]]:
    """(name, a function of the call number giving the request) per filter kind."""
    day = 86400

    def window(k: int) -> pb.ListEmailsRequest:
        request = pb.ListEmailsRequest()
        request.created_after.FromSeconds(int(now_ts - (10 + k % 5) * day))
        request.created_before.FromSeconds(int(now_ts - (9 + k % 5) * day))
        return request

    return [
        ("unfiltered, first page (ref)", lambda k: pb.ListEmailsRequest()),
        ("status bounced (5 %)", lambda k: pb.ListEmailsRequest(status=[email_pb2.EMAIL_STATUS_BOUNCED])),
        ("status failed (0.5 %)", lambda k: pb.ListEmailsRequest(status=[email_pb2.EMAIL_STATUS_FAILED])),
        ("status failed or bounced", lambda k: pb.ListEmailsRequest(
            status=[email_pb2.EMAIL_STATUS_FAILED, email_pb2.EMAIL_STATUS_BOUNCED])),
        ("recipient (5 emails)", lambda k: pb.ListEmailsRequest(recipient=f"user{(k * 7) % RECIPIENTS}@example.com")),
        ("from, 50 % sender", lambda k: pb.ListEmailsRequest(from_address="sender0@example.com")),
        ("from, 10 % sender", lambda k: pb.ListEmailsRequest(from_address=f"sender{1 + k % 4}@example.com")),
        ("tag 60 %", lambda k: pb.ListEmailsRequest(tag=["tag0"])),
        ("tag 0.6 %", lambda k: pb.ListEmailsRequest(tag=[f"tag{3 + k % 16}"])),
        ("tag 0.1 %", lambda k: pb.ListEmailsRequest(tag=["tag19"])),
        ("two tags (60 % and 20 %)", lambda k: pb.ListEmailsRequest(tag=["tag0", "tag5"])),
        ("metadata plan=pro (25 %)", lambda k: pb.ListEmailsRequest(metadata=["plan=pro"])),
        ("metadata user=N (10 emails)", lambda k: pb.ListEmailsRequest(metadata=[f"user={(k * 11) % USERS}"])),
        ("template (3 %)", lambda k: pb.ListEmailsRequest(template_id=f"tpl_{k % 10}")),
        ("one day, 10 days ago", window),
        ("tag 20 % + status bounced", lambda k: pb.ListEmailsRequest(tag=["tag1"], status=[email_pb2.EMAIL_STATUS_BOUNCED])),
        ("from 10 % + tag 0.6 %", lambda k: pb.ListEmailsRequest(from_address="sender1@example.com",
                                                                   tag=[f"tag{4 + 2 * (k % 8)}"])),
        ("tag 60 % + tag 0.1 %", lambda k: pb.ListEmailsRequest(tag=["tag0", "tag19"])),
        ("from 50 % + recipient", lambda k: pb.ListEmailsRequest(from_address="sender0@example.com",
                                                                   recipient=f"user{(k * 7) % RECIPIENTS}@example.com")),
        ("status failed + template", lambda k: pb.ListEmailsRequest(status=[email_pb2.EMAIL_STATUS_FAILED],
                                                                      template_id=f"tpl_{k % 10}")),
    ]


async def measure(address: str, key: str, calls: int, n: int) -> None:
    metadata = (("x-api-key", key),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)

        async def timed(call, request) -> tuple[float, object]:  # noqa: ANN001
            start = time.perf_counter()
            reply = await call(request, metadata=metadata)
            return (time.perf_counter() - start) * 1000, reply

        async def series(make) -> list[float]:  # noqa: ANN001
            for k in range(5):  # warm up
                await timed(stub.ListEmails, make(k))
            return [(await timed(stub.ListEmails, make(k)))[0] for k in range(calls)]

        rows: dict[str, list[float]] = {}
        get_status = [(await timed(stub.GetStatus, pb.GetStatusRequest(message_id=f"msg_bench_{1 + (k * 997) % n}")))[0]
                      for k in range(calls)]
        rows["GetStatus by id (ref)"] = get_status
        for name, make in cases(time.time()):
            rows[name] = await series(make)
            _, reply = await timed(stub.ListEmails, make(0))
            if not reply.emails:
                print(f"warning: {name} found nothing")
        for name, make in (("page 20, unfiltered", lambda: pb.ListEmailsRequest()),
                           ("page 20, tag 60 %", lambda: pb.ListEmailsRequest(tag=["tag0"])),
                           ("page 20, status bounced", lambda: pb.ListEmailsRequest(status=[email_pb2.EMAIL_STATUS_BOUNCED]))):
            request = make()
            for _ in range(19):
                _, reply = await timed(stub.ListEmails, request)
                request = make()
                request.page_token = reply.next_page_token
            rows[name] = [(await timed(stub.ListEmails, request))[0] for _ in range(calls)]
    reference = percentiles(rows["unfiltered, first page (ref)"])
    status_ref = percentiles(rows["GetStatus by id (ref)"])
    print(f"{'':32s} {'p50 ms':>8s} {'p99 ms':>8s}  p99 / unfiltered  p99 / GetStatus")
    worst = 0.0
    for name, latencies in rows.items():
        p = percentiles(latencies)
        if "ref" not in name:
            worst = max(worst, p[99])
        print(f"{name:32s} {p[50]:8.1f} {p[99]:8.1f}  {p[99] / reference[99]:16.2f}  {p[99] / status_ref[99]:15.2f}")
    print(f"worst filtered p99: {worst:.1f} ms (target ≤ 50 ms): {'met' if worst <= 50 else 'NOT met'}")


def explain(conn, account_id: int) -> None:  # noqa: ANN001
    """EXPLAIN ANALYZE of a few statements as core.emails.search builds them."""
    from sqlalchemy.dialects import postgresql

    from core.emails import search
    from core.emails.model import Status
    for name, wanted in (("tag 0.1 %", search.filters(tags=["tag19"])), ("status failed", search.filters(statuses=[Status.FAILED])),
                         ("two tags 60 % + 20 %", search.filters(tags=["tag0", "tag5"]))):
        sql = search.query(account_id, wanted, None, 51).compile(dialect=postgresql.dialect(),
                                                                  compile_kwargs={"literal_binds": True})
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
        print(f"-- {name}\n" + "\n".join(r[0] for r in plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200, help="calls per filter kind (one in flight)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of a few pages")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load generator on the same machine; one call in flight; pages of 50", flush=True)
    with bench_stack(workers=0) as stack, stack.sql() as conn:
        account_id = conn.execute("SELECT account_id FROM api_keys ORDER BY id LIMIT 1").fetchone()[0]
        load(conn, account_id, args.emails)
        if args.explain:
            explain(conn, account_id)
        asyncio.run(measure(stack.address, stack.key, args.calls, args.emails))


if __name__ == "__main__":
    main()
