"""Seed a bench database with history: N emails cloned from a delivered template email
(its row and its events, e.g. QUEUED, SENDING, SENT), server-side with INSERT … SELECT
generate_series, in batches (one transaction each, so each batch's events carry their own
txid, as real commits do). Column lists come from the live schema, so the copies match it
exactly (every column the template has, indexes and constraints maintained as on a real
insert); only ids, message ids, accounts and timestamps differ.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

BATCH = 100_000
SPAN_DAYS = 6.0  # within the body retention (7 days): the scheduler prunes nothing meanwhile


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
        " ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def _select_list(columns: list[str], alias: str, overrides: dict[str, str], omit: set[str]) -> tuple[str, str]:
    names = [c for c in columns if c not in omit]
    exprs = [overrides.get(c, f"{alias}.{c}") for c in names]
    return ", ".join(f'"{c}"' for c in names), ", ".join(exprs)


def _session(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)  # a transaction a statement
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET maintenance_work_mem = '256MB'")
    return conn


def _run_all(dsn: str, statements: list[tuple[str, dict]], sessions: int) -> int:
    """Run the statements over `sessions` connections; the rows they wrote."""
    todo = iter(statements)

    def run() -> int:
        rows = 0
        with _session(dsn) as conn:
            for sql, params in todo:  # the iterator is shared: each statement runs once
                rows += max(conn.execute(sql, params or None).rowcount, 0)
        return rows

    with ThreadPoolExecutor(sessions) as pool:
        return sum(pool.map(lambda _: run(), range(sessions)))


def seed(dsn: str, template_id: int, n: int, accounts: list[int], batch: int = BATCH, sessions: int = 2) -> dict[str, float]:
    """Clone email `template_id` and its events n times, spread over `accounts` (the first
    gets half, the others share the rest) and over the last SPAN_DAYS days, oldest first.
    Ids are reserved up front and given in that order (emails and their events stay in
    id order, as they were written, though batches run on `sessions` connections).
    Returns rows written and seconds taken; then VACUUM (ANALYZE) both tables, timed
    apart, so autovacuum does not wake up in the middle of a measurement."""
    conn = _session(dsn)
    salt = secrets.token_hex(4)
    k_events = conn.execute("SELECT count(*) FROM events WHERE email_id = %s", (template_id,)).fetchone()[0]
    base = conn.execute("SELECT nextval(pg_get_serial_sequence('emails', 'id'))").fetchone()[0]
    conn.execute("SELECT setval(pg_get_serial_sequence('emails', 'id'), %s)", (base + n,))
    ev_base = conn.execute("SELECT nextval(pg_get_serial_sequence('events', 'id'))").fetchone()[0]
    conn.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), %s)", (ev_base + n * k_events,))
    email_cols, email_exprs = _select_list(
        _columns(conn, "emails"),
        "t",
        {
            "id": "%(base)s + g",
            "public_id": f"'msg_' || substr(md5('{salt}' || g::text), 1, 24)",
            "account_id": "(CASE WHEN g %% 2 = 0 THEN %(first)s ELSE (%(others)s::bigint[])[1 + (g / 2) %% %(k)s] END)",
            "created_at": "%(t0)s::timestamptz + (g - 1) * %(step)s::interval",
            "updated_at": "%(t0)s::timestamptz + (g - 1) * %(step)s::interval + (t.updated_at - t.created_at)",
            "sent_at": "%(t0)s::timestamptz + (g - 1) * %(step)s::interval + (t.sent_at - t.created_at)",
            "published_at": "%(t0)s::timestamptz + (g - 1) * %(step)s::interval",
        },
        set(),
    )
    event_cols, event_exprs = _select_list(
        _columns(conn, "events"),
        "ev",
        {"id": "%(ev_base)s + (m.id - %(base)s - 1) * %(k_events)s + ev.ord", "account_id": "m.account_id",
         "email_id": "m.id", "occurred_at": "m.created_at + (ev.occurred_at - t.created_at)"},
        {"txid"},  # txid: the column default, this batch's transaction id
    )
    # One statement a batch: the emails, then their events from the emails' RETURNING.
    insert = (
        f"WITH m AS (INSERT INTO emails ({email_cols}) SELECT {email_exprs}"
        " FROM emails t, generate_series(%(lo)s, %(hi)s) g WHERE t.id = %(tpl)s ORDER BY g"
        " RETURNING id, account_id, created_at)"
        f" INSERT INTO events ({event_cols}) SELECT {event_exprs}"
        " FROM m, emails t, (SELECT *, row_number() OVER (ORDER BY id) AS ord FROM events WHERE email_id = %(tpl)s) ev"
        " WHERE t.id = %(tpl)s ORDER BY m.id, ev.ord"
    )
    first, others = accounts[0], accounts[1:] or accounts[:1]
    t0 = conn.execute("SELECT now() - make_interval(secs => %s)", (SPAN_DAYS * 86400,)).fetchone()[0]
    step = f"{SPAN_DAYS * 86400 / max(n, 1):.6f} seconds"
    started = time.perf_counter()
    # As pg_restore does: secondary indexes dropped and built again afterwards (their exact
    # definitions from pg_indexes), foreign-key triggers off for the session (the rows are
    # consistent by construction); primary keys and unique constraints stay checked.
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ('emails', 'events')"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    common = dict(first=first, others=others, k=len(others), t0=t0, step=step, tpl=template_id, base=base,
                  ev_base=ev_base, k_events=k_events)
    batches = [(insert, {**common, "lo": lo, "hi": min(lo + batch - 1, n)}) for lo in range(1, n + 1, batch)]
    events_written = _run_all(dsn, batches, sessions)
    inserted = time.perf_counter() - started
    _run_all(dsn, [(definition, {}) for _, definition in indexes], sessions)
    conn.execute("SET session_replication_role = DEFAULT")
    # The webhook fan-out had read these events as they were written (as a live system's
    # would have): its position moves past them, or it would spend the run catching up.
    conn.execute("UPDATE webhook_dispatch_position SET (last_txid, last_event_id) ="
                 " (SELECT txid, id FROM events ORDER BY txid DESC, id DESC LIMIT 1)")
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute("VACUUM (ANALYZE) emails")
    conn.execute("VACUUM (ANALYZE) events")
    vacuumed = time.perf_counter() - started
    conn.close()
    return {"emails": n, "events": events_written, "seconds": seeded, "insert_seconds": inserted,
            "vacuum_seconds": vacuumed}
