"""The Node.js example (clients/node, @grpc/grpc-js + @grpc/proto-loader) against the
real stack: it sends, follows the email's events to SENT and reads its status; through
a proxy that drops, it resumes its event stream by cursor. Installs its npm packages
(`npm ci`) once per session; skipped only where `node` is not installed."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.support.processes import REPO
from tests.support.proxy import Proxy

NODE_DIR = REPO / "clients" / "node"


@pytest.fixture(scope="session")
def node_example() -> Path:
    """clients/node with its locked dependencies installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    npm = shutil.which("npm")
    assert npm, "node is installed but npm is not"
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return NODE_DIR / "postwire.js"


def node_env(address: str, key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    env.update(POSTWIRE_ADDRESS=address, POSTWIRE_API_KEY=key, **{f"POSTWIRE_{k.upper()}": v for k, v in extra.items()})
    return env


class Lines:
    """A running node process whose stdout lines arrive on a queue."""

    def __init__(self, script: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["node", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"ended before {prefix!r}: {self.seen}\n{self.stderr()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def run_node(node_example: Path) -> Iterator:
    started: list[Lines] = []

    def start(env: dict[str, str]) -> Lines:
        started.append(Lines(node_example, env))
        return started[-1]

    yield start
    for lines in started:
        lines.stop()


def events_of(seen: list[str]) -> list[list[str]]:
    return [line.split()[1:] for line in seen if line.startswith("event ")]


def test_node_example_sends_follows_events_to_sent_and_reads_the_status(stack: Stack, run_node) -> None:
    node = run_node(node_env(stack.address, stack.key_a, to="node@node.example.com"))
    sent = node.until("sent ")
    message_id = sent.split()[1]
    assert message_id.startswith("msg_") and sent.endswith("EMAIL_STATUS_QUEUED")
    assert node.until("status ") == "status EMAIL_STATUS_SENT"
    assert node.proc.wait(timeout=10) == 0, node.stderr()
    events = events_of(node.seen)
    assert [e[0] for e in events] == ["EVENT_TYPE_QUEUED", "EVENT_TYPE_SENDING", "EVENT_TYPE_SENT"]
    assert all(e[1] == message_id for e in events)
    assert events[-1][2:4] == ["node@node.example.com", "250"]
    assert stack.recorder.wait_for(message_id).message["Subject"] == "Hello from Node"


def test_node_example_resumes_its_event_stream_by_cursor_after_a_disconnect(stack: Stack, run_node) -> None:
    with Proxy(int(stack.address.rsplit(":", 1)[1])) as proxy:
        node = run_node(node_env(f"127.0.0.1:{proxy.port}", stack.key_a, to="node-resume@node.example.com",
                                 send_delay_seconds="3"))
        assert node.until("sent ").endswith("EMAIL_STATUS_SCHEDULED")
        scheduled = node.until("event ").split()
        assert scheduled[1] == "EVENT_TYPE_SCHEDULED"
        proxy.down()  # cuts the open stream while the email waits for its send_at
        time.sleep(0.5)
        proxy.up()
        resumed = node.until("resuming after ")
        assert resumed.startswith(f"resuming after {scheduled[-1]} ")  # the last cursor it saw
        assert node.until("status ", timeout=40) == "status EMAIL_STATUS_SENT"
        assert node.proc.wait(timeout=10) == 0, node.stderr()
    events = events_of(node.seen)
    assert [e[0] for e in events] == [
        "EVENT_TYPE_SCHEDULED", "EVENT_TYPE_QUEUED", "EVENT_TYPE_SENDING", "EVENT_TYPE_SENT"
    ]
    assert len({e[-1] for e in events}) == 4  # no event twice
