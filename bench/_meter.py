"""CPU meters for benches on a shared machine: a stack's server processes, and the
database backends serving them (not the scheduler's: its background polling is measured
apart, with no load, as CPU and as rows read by sequential scans)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from accept import cpu_seconds, server_children


def _local_ports(pid: int) -> set[int]:
    """Local TCP ports of a process's sockets (its database connections among them)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def db_pids(stack, scheduler: bool = False) -> list[int]:  # noqa: ANN001
    """This database's client backends: the scheduler's only when `scheduler` is True,
    the others' (server, workers) otherwise."""
    ports = _local_ports(stack.pids["scheduler"])
    with stack.sql() as conn:
        rows = conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for pid, port in rows if (port in ports) == scheduler]


def cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:  # a backend that went away
            pass
    return total


class Meter:
    """CPU seconds of the server processes and of the database backends serving them
    (not the scheduler's) over a block."""

    def __init__(self, stack, scheduler: bool = False) -> None:  # noqa: ANN001
        self.stack, self.scheduler = stack, scheduler

    def __enter__(self) -> Meter:
        self.server = [self.stack.pids["server"], *server_children(self.stack.pids["server"]).values()]
        self.db = {pid: cpu([pid]) for pid in db_pids(self.stack, self.scheduler)}
        self.before = cpu(self.server)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server_cpu = cpu(self.server) - self.before
        # backends opened meanwhile (a pool growing) count from their start
        self.db_cpu = sum(cpu([pid]) - self.db.get(pid, 0.0) for pid in db_pids(self.stack, self.scheduler))
        self.elapsed = time.perf_counter() - self.started


def _seq_rows(stack) -> dict[str, int]:  # noqa: ANN001
    with stack.sql() as conn:
        rows = conn.execute("SELECT relname, seq_tup_read FROM pg_stat_user_tables WHERE relname IN ('emails', 'events')")
        return dict(rows.fetchall())


def idle(stack, seconds: float = 5.0) -> dict[str, float]:  # noqa: ANN001
    """With no load: the scheduler's database CPU ms/s (its backends; a parallel query's
    helper processes come and go unseen, so a lower bound) and the rows of emails and
    events read by sequential scans per second (any backend; the statistics collector's)."""
    time.sleep(1.0)  # statistics flushed
    before = _seq_rows(stack)
    with Meter(stack, scheduler=True) as meter:
        time.sleep(seconds)
    time.sleep(1.0)
    after = _seq_rows(stack)
    return {"db_ms": meter.db_cpu / seconds * 1000,
            **{f"seq_{t}": (after.get(t, 0) - before.get(t, 0)) / (seconds + 1.0) for t in ("emails", "events")}}
