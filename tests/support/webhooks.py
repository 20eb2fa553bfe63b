"""A webhook receiver for the tests: a threaded http.server on 127.0.0.1 that verifies
Standard Webhooks signatures independently of Postwire's code, records what arrived,
and answers with scripted status codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE = 5 * 60  # seconds


class VerificationError(Exception):
    pass


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> None:
    """The receiver's side of the spec: all three headers present, timestamp within
    five minutes, and at least one `v1,` signature equal (constant time) to
    base64(HMAC-SHA256(base64decode(secret without whsec_), id.timestamp.body))."""
    msg_id, stamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not signatures:
        raise VerificationError("missing headers")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise VerificationError("bad timestamp") from exc
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE:
        raise VerificationError("timestamp outside the tolerance")
    key = base64.b64decode(secret.split("_", 1)[1] if secret.startswith("whsec_") else secret)
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    for entry in signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return
    raise VerificationError("no matching signature")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Route:
    """What one path answers: scripted codes first, then `default`."""

    script: deque[int] = field(default_factory=deque)
    default: int = 200
    received: list[Received] = field(default_factory=list)


class Receiver:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    route = receiver.routes.setdefault(self.path, Route())
                    code = route.script.popleft() if route.script else route.default
                    route.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, code))
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *script: int, default: int = 200) -> str:
        with self.lock:
            self.routes[path] = Route(deque(script), default)
        return self.url(path)

    def received(self, path: str) -> list[Received]:
        with self.lock:
            return list(self.routes.get(path, Route()).received)

    def wait_for(self, path: str, predicate: Any, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"webhooks at {path} never satisfied the condition; got {[r.body for r in self.received(path)]}")

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
