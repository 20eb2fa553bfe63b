"""Chaos: one fault at a time under a steady stream of sends, then a ledger.

For each fault: a fresh account, two subscribers following its events by cursor, ~430
sends with idempotency keys through a client that retries UNAVAILABLE, and the fault
injected while they flow. Then every accepted email must reach a terminal state in
bounded time; the SMTP sink must hold each SENT email at least once (by Message-ID), a
second copy only of an email whose attempt was abandoned (in flight at a kill); every
subscriber must have seen each event GetStatus reports exactly once; and GetStatus must
agree with the sink; GetStats' totals must equal the account's events in the log
(tests/chaos/stats_check.py). The ledger is printed per fault (and at the end of the run).

The faults are real: processes get SIGKILL, and this machine's RabbitMQ, PostgreSQL and
Redis are stopped and started again (always restarted, in `finally`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.chaos import services
from tests.chaos.client import RetryingClient
from tests.chaos.conftest import LEDGER, ChaosStack
from tests.chaos.ledger import Load, Subscriber, format_table, reconcile, statuses_of, wait_caught_up, wait_terminal
from tests.chaos.stats_check import stats_problems

# `make chaos-peak` (bench/ledger_peak.py) sets CHAOS_RATE to the measured peak accept
# rate: the same ~7 s of sending, more emails, more sending threads, a longer drain.
RATE = float(os.environ.get("CHAOS_RATE", "60"))  # per second: ~7 s of sending, every fault inside it
COUNT = int(os.environ.get("CHAOS_COUNT", "0")) or round(RATE * 430 / 60)  # 430 per fault at 60/s: ~3,000 in all
THREADS = int(os.environ.get("CHAOS_THREADS", "0")) or max(6, round(RATE / 25))  # one blocking client each
FAULT_AT = 1.5  # seconds into the sending
DRAIN_TIMEOUT = max(45.0, COUNT / 40)  # every accepted email terminal within this, once the fault is over


@dataclass
class Context:
    stack: ChaosStack
    load: Load
    events: list[str]

    def at(self, seconds: float) -> None:
        """Sleep until `seconds` after the first send."""
        delay = seconds - self.load.elapsed()
        if delay > 0:
            time.sleep(delay)

    def note(self, what: str) -> None:
        self.events.append(f"{self.load.elapsed():5.1f}s {what}")


def recipient(index: int) -> str:
    return f"rcpt{index}@d{index % 4}.chaos.example"


# The faults. Each runs while the load flows and restores what it broke before returning.


def worker_sigkill(ctx: Context) -> None:
    # Every 10th recipient's DATA stalls 0.5 s, so there are deliveries in flight to kill.
    deadline = time.monotonic() + 5
    while sum(ctx.stack.recorder.in_data.values()) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    in_data = sum(ctx.stack.recorder.in_data.values())
    ctx.stack.kill_worker(0)
    ctx.note(f"SIGKILL worker 0 ({in_data} transactions inside DATA)")
    time.sleep(1.0)
    ctx.stack.start_worker(0)
    ctx.note("worker 0 restarted")


def rabbitmq_restart(ctx: Context) -> None:
    try:
        services.rabbit_stop_app()
        ctx.note("rabbitmqctl stop_app")
        time.sleep(3.0)
    finally:
        services.rabbit_start_app()
        services.ensure_rabbitmq()
        ctx.note("rabbitmqctl start_app: answering again")


def postgres_restart(ctx: Context) -> None:
    try:
        ctx.note("pg_ctlcluster restart -m fast")
        services.restart_postgres()
    finally:
        services.ensure_postgres()
        ctx.note("PostgreSQL answering again")


def redis_restart(ctx: Context) -> None:
    try:
        services.redis_shutdown()
        ctx.note("redis-cli shutdown nosave")
        time.sleep(2.0)
    finally:
        services.redis_start()
        services.ensure_redis()
        ctx.note("redis-server started: PONG")


def smtp_421(ctx: Context) -> None:
    try:
        ctx.stack.recorder.refuse_all()
        ctx.note("relay refuses everything with 421")
        time.sleep(3.0)
    finally:
        ctx.stack.recorder.accept_all()
        ctx.note(f"relay accepts again ({ctx.stack.recorder.refused} transactions refused)")


def smtp_disconnect(ctx: Context) -> None:
    pass  # the faults were armed before the load (see PREPARE)


def server_sigkill(ctx: Context) -> None:
    ctx.stack.kill_server()
    ctx.note("SIGKILL server (streams open)")
    time.sleep(0.5)
    ctx.stack.start_server()
    ctx.note("server restarted and serving")


def arm_stalls(stack: ChaosStack) -> None:
    for i in range(0, COUNT, 10):
        stack.recorder.faults[recipient(i).lower()] = ["STALL 0.5"]


def arm_disconnects(stack: ChaosStack) -> None:
    for i in range(0, COUNT, 4):  # a quarter drop once, some of them twice
        stack.recorder.faults[recipient(i).lower()] = ["DISCONNECT"] * (2 if i % 12 == 0 else 1)


FAULTS: dict[str, Callable[[Context], None]] = {
    "worker-sigkill": worker_sigkill,
    "rabbitmq-restart": rabbitmq_restart,
    "postgres-restart": postgres_restart,
    "redis-restart": redis_restart,
    "smtp-421": smtp_421,
    "smtp-disconnect": smtp_disconnect,
    "server-sigkill": server_sigkill,
}
PREPARE: dict[str, Callable[[ChaosStack], None]] = {"worker-sigkill": arm_stalls, "smtp-disconnect": arm_disconnects}


def _runs() -> list[tuple[str, int]]:
    """Every fault once; `make chaos-soak` picks faults (CHAOS_FAULTS, comma-separated)
    and repeats each (CHAOS_ROUNDS times), each run on a fresh account."""
    faults = [f for f in os.environ.get("CHAOS_FAULTS", "").split(",") if f] or list(FAULTS)
    unknown = set(faults) - set(FAULTS)
    assert not unknown, f"CHAOS_FAULTS names unknown faults {sorted(unknown)}; known: {list(FAULTS)}"
    return [(fault, n) for fault in faults for n in range(int(os.environ.get("CHAOS_ROUNDS", "1")))]


@pytest.mark.parametrize(("fault", "run"), _runs(), ids=[f if n == 0 else f"{f}-{n}" for f, n in _runs()])
def test_ledger_under_fault(chaos: ChaosStack, fault: str, run: int) -> None:
    started = time.monotonic()
    chaos.recorder.faults.clear()
    name = fault if run == 0 else f"{fault}-{run}"  # tags subjects and keys: each run's own in the sink
    key = chaos.new_key(f"chaos-{name}")
    subscribers = [Subscriber(chaos.address, key) for _ in range(2)]
    load = Load(chaos.address, key, name, COUNT, RATE, recipient, threads=THREADS)
    ctx = Context(chaos, load, [])
    try:
        if fault in PREPARE:
            PREPARE[fault](chaos)
        time.sleep(0.3)  # the subscribers' streams are open
        load.start()
        ctx.at(FAULT_AT)
        try:
            FAULTS[fault](ctx)
        finally:
            chaos.heal()  # services up, processes running, relay open: whatever happened
        load.join(timeout=max(90.0, COUNT / RATE * 4))
        answered = [o.accepted_at for o in load.outcomes if o.message_id]
        achieved = len(answered) / max(max(answered, default=0.0) - load.started, 1e-6)
        ctx.note(f"all {COUNT} sends answered ({achieved:.0f}/s accepted, {RATE:.0f}/s offered)")
        with RetryingClient(chaos.address, key) as client:
            statuses, drain = wait_terminal(client, load.accepted(), DRAIN_TIMEOUT)
            ctx.note(f"terminal after {drain:.1f}s more")
            expected = {e.cursor for s in statuses.values() for e in s.events}
            wait_caught_up(subscribers, expected, timeout=15)
            statuses = statuses_of(client, list(statuses))  # a final look, all settled
        ledger = reconcile(name, load, statuses, chaos.recorder, subscribers)
        counts_off = stats_problems(chaos.address, key, chaos.pg_url, f"chaos-{name}")
        ledger.drain_seconds = drain
        replays = load.replay_check()
        if replays:
            ledger.notes.append(f"idempotent replays answered other ids: {replays[:5]}")
        chaos.check_alive()
    finally:
        for subscriber in subscribers:
            subscriber.stop()
        chaos.recorder.faults.clear()
        chaos.heal()
    ledger.seconds = time.monotonic() - started
    LEDGER.append(ledger.row())
    print(f"\n[{fault}] " + "; ".join(ctx.events))
    print(format_table([ledger.row()]))
    problems = ledger.problems() + counts_off
    assert not problems, f"{fault}: " + "\n".join(problems) + "\n" + chaos.log_tail()
