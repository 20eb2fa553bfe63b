"""gRPC health follows PostgreSQL and RabbitMQ: a real `postwire server` whose
dependencies sit behind a switchable TCP proxy (the machine's services keep running)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import SERVICE_NAMES
from tests.conftest import Stack
from tests.support.ports import free_port
from tests.support.processes import Process, wait_serving
from tests.support.proxy import Proxy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NAMES = ("", *SERVICE_NAMES)


def statuses(address: str) -> dict[str, int]:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2).status for name in NAMES}


def wait_all(address: str, wanted: int, timeout: float = 10.0) -> float:
    """Seconds until "" and every service report `wanted`."""
    started = time.monotonic()
    while True:
        seen = statuses(address)
        if set(seen.values()) == {wanted}:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"health never became {wanted} everywhere: {seen}")
        time.sleep(0.05)


class Watcher:
    """Every status the Watch stream of "" reports, in order."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.call = health_pb2_grpc.HealthStub(self.channel).Watch(health_pb2.HealthCheckRequest(service=""))
        self.seen: list[int] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for reply in self.call:
                self.seen.append(reply.status)
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()


@contextmanager
def server_behind(stack: Stack, tmp_path: Path, *, database: Proxy | None = None, broker: Proxy | None = None,
                  wait: bool = True) -> Iterator[tuple[Process, str]]:
    env = dict(stack.env)
    port = free_port()
    env.update(POSTWIRE_GRPC_PORT=str(port), POSTWIRE_HEALTH_CHECK_INTERVAL="0.2", POSTWIRE_HEALTH_CHECK_TIMEOUT="1")
    if database is not None:
        db = urlsplit(env["POSTWIRE_DATABASE_URL"])
        env["POSTWIRE_DATABASE_URL"] = env["POSTWIRE_DATABASE_URL"].replace(f":{db.port}/", f":{database.port}/")
    if broker is not None:
        amqp = urlsplit(env["POSTWIRE_BROKER_URL"])
        env["POSTWIRE_BROKER_URL"] = env["POSTWIRE_BROKER_URL"].replace(f":{amqp.port}/", f":{broker.port}/")
    process = Process(["server"], env, tmp_path / f"server-{port}.log")
    address = f"127.0.0.1:{port}"
    try:
        if wait:
            wait_serving(address, process)
        yield process, address
    finally:
        process.stop()


def _port(url: str) -> int:
    return urlsplit(url).port or 0


@pytest.mark.parametrize("dependency", ["PostgreSQL", "RabbitMQ"])
def test_health_turns_not_serving_while_a_dependency_is_unreachable_and_back(
    stack: Stack, tmp_path: Path, dependency: str
) -> None:
    url = stack.env["POSTWIRE_DATABASE_URL" if dependency == "PostgreSQL" else "POSTWIRE_BROKER_URL"]
    with Proxy(_port(url)) as proxy:
        which = {"database": proxy} if dependency == "PostgreSQL" else {"broker": proxy}
        with server_behind(stack, tmp_path, **which) as (process, address):  # type: ignore[arg-type]
            watcher = Watcher(address)
            try:
                assert set(statuses(address).values()) == {SERVING}
                for _ in range(2):  # twice: every outage is noticed, not just the first
                    proxy.down()
                    assert wait_all(address, NOT_SERVING) < 5
                    time.sleep(0.6)  # several probes fail meanwhile: logged once all the same
                    proxy.up()
                    assert wait_all(address, SERVING) < 5
                time.sleep(0.3)
                assert watcher.seen == [SERVING, NOT_SERVING, SERVING, NOT_SERVING, SERVING]
            finally:
                watcher.close()
            process.check_alive()
        log = process.log()
    assert log.count(f"health: {dependency} unreachable") == 2, log
    assert log.count(f"health: {dependency} reachable again: SERVING") == 2, log
    other = "RabbitMQ" if dependency == "PostgreSQL" else "PostgreSQL"
    assert f"{other} unreachable" not in log


def test_a_server_started_without_its_database_is_not_serving_until_it_answers(stack: Stack, tmp_path: Path) -> None:
    with Proxy(_port(stack.env["POSTWIRE_DATABASE_URL"])) as proxy:
        proxy.down()
        with server_behind(stack, tmp_path, database=proxy, wait=False) as (process, address):
            deadline = time.monotonic() + 30
            while True:  # wait until it answers health at all
                try:
                    seen = statuses(address)
                    break
                except grpc.RpcError:
                    process.check_alive()
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert set(seen.values()) == {NOT_SERVING}, "never SERVING before the first check passed"
            proxy.up()
            assert wait_all(address, SERVING) < 5
        assert "health: PostgreSQL unreachable" in process.log()
