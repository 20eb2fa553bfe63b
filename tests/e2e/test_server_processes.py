"""Several server processes on one port (POSTWIRE_SERVER_PROCESSES): connections are
spread across them, every Send is stored once, and SIGTERM stops them all cleanly."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc
from tests.conftest import Stack
from tests.support.ports import free_port
from tests.support.processes import Process, wait_serving


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_two_server_processes_share_the_port_and_stop_together_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = {**stack.env, "POSTWIRE_GRPC_PORT": str(port), "POSTWIRE_SERVER_PROCESSES": "2", "POSTWIRE_METRICS_PORT": "0"}
    server = Process(["server"], env, tmp_path / "server.log")
    try:
        wait_serving(f"127.0.0.1:{port}", server)
        servers = [c for c in _children(server.proc.pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(servers) == 2
        message_ids = []
        for _ in range(8):  # eight connections: the kernel hands them to either process
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                stub = email_service_pb2_grpc.EmailServiceStub(channel)
                reply = stub.Send(
                    pb.SendRequest(from_address="a@example.com", to=["procs@example.com"], subject="p", text_body="x"),
                    metadata=(("x-api-key", stack.key_a),),
                    timeout=10,
                )
                message_ids.append(reply.message_id)
        client = stack.client()
        assert all(client.get_status(m).message_id == m for m in message_ids)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        deadline = time.monotonic() + 5
        while any(_running(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in servers)
    finally:
        server.stop()
