"""The chaos suite's own stack: a database, a queue prefix, an SMTP recorder, one server,
two workers and a scheduler, all its own, because its tests kill processes and restart
services. Same pattern as the session `stack` (tests/conftest.py), on tests/support/stack.py.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.chaos import services
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import Process, run, wait_serving
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env

# Outages here last seconds: nothing may run out of retry lifetime meanwhile, leases are
# short so a killed worker's claims come back quickly, and the budgets are out of the way.
CHAOS_SETTINGS = {
    "retry_lifetime_seconds": "120",
    "lease_seconds": "5",
    "domain_concurrency": "10",
    "send_per_minute": "100000",
    "read_per_minute": "100000",
    "account_send_per_minute": "100000",
    "account_read_per_minute": "100000",
}

LEDGER: list[dict[str, object]] = []  # one row per fault, printed at the end of the run


@dataclass
class ChaosStack:
    address: str
    env: dict[str, str]
    recorder: Recorder
    server: Process
    workers: list[Process]
    scheduler: Process
    logs: Path
    retired: list[Process] = field(default_factory=list)  # killed ones, for their logs

    @property
    def pg_url(self) -> str:
        return self.env["POSTWIRE_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")

    def new_key(self, account: str) -> str:
        """A key of a fresh account: each fault's ledger and event log stand alone."""
        return make_key(self.env, account, name=account)

    def kill_worker(self, index: int) -> None:
        worker = self.workers[index]
        worker.proc.send_signal(signal.SIGKILL)
        worker.stop()
        self.retired.append(worker)

    def start_worker(self, index: int) -> None:
        self.workers[index] = Process(["worker"], self.env, self.logs / f"worker{index}-{secrets.token_hex(2)}.log")

    def kill_server(self) -> None:
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.stop()
        self.retired.append(self.server)

    def start_server(self) -> None:
        self.server = Process(["server"], self.env, self.logs / f"server-{secrets.token_hex(2)}.log")
        wait_serving(self.address, self.server)

    def processes(self) -> list[Process]:
        return [self.server, *self.workers, self.scheduler]

    def check_alive(self) -> None:
        """No process of the stack died by itself (a crash under a fault is a bug)."""
        for process in self.processes():
            process.check_alive()

    def heal(self) -> None:
        """Whatever a failed test left behind: services up, processes running, relay open."""
        self.recorder.accept_all()
        services.ensure_all()
        for i, worker in enumerate(self.workers):
            if worker.proc.poll() is not None:
                self.start_worker(i)
        if self.server.proc.poll() is not None:
            self.start_server()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for process in [*self.retired, *self.processes()]:
            text = process.log().splitlines()
            out.append(f"--- {process.log_path.name} (last {lines} of {len(text)} lines)")
            out.extend(text[-lines:])
        return "\n".join(out)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    services.ensure_all()
    logs = tmp_path_factory.mktemp("chaos-logs")
    port = free_port()
    with fresh_database("postwire_chaos") as database_url, fresh_queue_prefix("chaos") as prefix, SmtpServer() as smtp:
        env = stack_env(
            database_url=database_url,
            queue_prefix=prefix,
            grpc_port=port,
            smtp_relays=json.dumps([{"host": "127.0.0.1", "port": smtp.port, "timeout": 2}]),
            **CHAOS_SETTINGS,
        )
        run(["migrate"], env)
        server = Process(["server"], env, logs / "server.log")
        workers = [Process(["worker"], env, logs / f"worker{i}.log") for i in range(2)]
        scheduler = Process(["scheduler"], env, logs / "scheduler.log")
        stack = ChaosStack(f"127.0.0.1:{port}", env, smtp.recorder, server, workers, scheduler, logs)
        try:
            wait_serving(stack.address, server)
            yield stack
        finally:
            for process in stack.processes():
                process.stop()
            services.ensure_all()  # so that dropping the database and queues works


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LEDGER:
        from tests.chaos.ledger import format_table, format_totals

        terminalreporter.write_sep("=", "chaos ledger")
        terminalreporter.write_line(format_table(LEDGER))
        terminalreporter.write_line(format_totals(LEDGER))
