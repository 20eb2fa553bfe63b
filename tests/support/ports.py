"""Free TCP ports for the processes a test starts.

A port the kernel picks with bind(0) comes from the ephemeral range, which is also where
every outgoing connection (to PostgreSQL, RabbitMQ, Redis, ...) takes its local port: in
the moment between choosing a port and the server binding it, a connection can take it
("Address already in use"). So ports are chosen below that range, at random, never the
same one twice in a run, and checked free by binding them.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free and outside the ephemeral range."""
    high = _ephemeral_low()
    low = max(10000, high - 12000)
    for _ in range(200):
        port = random.randrange(low, high) if high > low else 0
        if port and port not in _given and _bindable(port):
            _given.add(port)
            return port
    with socket.socket() as s:  # no room below the ephemeral range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports."""
    return [free_port() for _ in range(count)]
