"""Run `postwire` commands as real processes for the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
POSTWIRE = str(Path(sys.executable).with_name("postwire"))


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    result = subprocess.run(
        [POSTWIRE, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"postwire {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Process:
    """A long-running `postwire` process with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> None:
        self.args = args
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [POSTWIRE, *args], env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"postwire {self.args} exited {self.proc.returncode}:\n{self.log()}")

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def wait_listening(port: int, process: Process, timeout: float = 20) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port` (an SMTP listener)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.check_alive()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}:\n{process.log()}")


def wait_serving(address: str, process: Process, timeout: float = 30) -> None:
    """Wait until the gRPC health service answers SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            process.check_alive()
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"server at {address} not serving after {timeout}s:\n{process.log()}")


def base_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    env.update({f"POSTWIRE_{k.upper()}": v for k, v in values.items()})
    return env


@contextmanager
def running_stack(env: dict[str, str], logs: Path, address: str) -> Iterator[list[Process]]:
    """`postwire server`, `worker` and `scheduler` with this environment, logging into
    `logs`; yields them once the server answers health checks, stops them after."""
    processes = [Process([name], env, logs / f"{name}.log") for name in ("server", "worker", "scheduler")]
    try:
        wait_serving(address, processes[0])
        yield processes
    finally:
        for process in processes:
            process.stop()
