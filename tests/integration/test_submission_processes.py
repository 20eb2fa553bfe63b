"""POSTWIRE_SUBMISSION_PROCESSES: `postwire submission` runs N listener processes on the
same ports (SO_REUSEPORT) and supervises them like `postwire server`: SIGTERM stops them
all, and one that dies takes the others down (the container restarts the whole)."""

from __future__ import annotations

import os
import secrets
import signal
import smtplib
import time
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import Process, base_env, wait_listening


def _listeners(parent: int) -> list[int]:
    children = [int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    return [c for c in children if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


def _start(tmp_path: Path) -> tuple[Process, int]:
    port = free_port()
    env = base_env(secret_key=secrets.token_urlsafe(32), broker_url="stub://", redis_url="",
                   database_url="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                   submission_port="0", submission_tls_port="0", submission_plain_port=str(port),
                   submission_metrics_port="0", submission_processes="2")
    listener = Process(["submission"], env, tmp_path / "submission.log")
    try:
        wait_listening(port, listener, timeout=60)
        deadline = time.monotonic() + 60
        while "(2 processes)" not in listener.log():  # printed once both listen
            listener.check_alive()
            assert time.monotonic() < deadline, listener.log()
            time.sleep(0.1)
    except BaseException:
        listener.stop()
        raise
    return listener, port


def test_two_listener_processes_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    listener, port = _start(tmp_path)
    try:
        children = _listeners(listener.proc.pid)
        assert len(children) == 2, listener.log()
        for _ in range(20):  # every connection answered, whichever process the kernel picks
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                assert smtp.ehlo()[0] == 250
    finally:
        code = listener.stop()
    assert code == 0, listener.log()
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower()


def test_a_listener_process_that_dies_stops_the_others(tmp_path: Path) -> None:
    listener, port = _start(tmp_path)
    try:
        first, second = _listeners(listener.proc.pid)
        os.kill(first, signal.SIGKILL)
        listener.proc.wait(timeout=20)
        assert listener.proc.returncode != 0
        assert not Path(f"/proc/{second}").exists() or "zombie" in Path(f"/proc/{second}/status").read_text().lower()
    finally:
        listener.stop()
