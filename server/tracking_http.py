"""The tracking HTTP handler: HTTP/1.1 (h11 on asyncio streams) behind Envoy, which
routes `/t/` here (envoy/envoy.yaml; the gRPC-JSON transcoder cannot answer a 302).

    GET|HEAD /t/o/<token>   200, a 1x1 transparent GIF, Cache-Control: no-store; OPENED
    GET|HEAD /t/c/<token>   302 to the URL sealed in the token; CLICKED
    anything else           404 (a forged, altered or unknown token included), 405 for
                            other methods

It runs in every server process (server/app.py), sharing the port (SO_REUSEPORT).
The decisions are core.tracking.hits'; this module only speaks HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from urllib.parse import quote

import h11
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from core.tracking.hits import Hits
from core.tracking.record import HitRecorder
from core.tracking.tokens import CLICK, OPEN, TrackingTokens

log = logging.getLogger(__name__)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PATHS = {"/t/o/": OPEN, "/t/c/": CLICK}
_NO_STORE = [(b"cache-control", b"no-store, no-cache, must-revalidate, private"), (b"pragma", b"no-cache")]
_IDLE = 30.0
NOT_FOUND = b"<!doctype html><title>Not found</title><p>This link is not valid.</p>\n"


def location(url: str) -> bytes:
    """A URL as a Location value: control characters dropped, non-ASCII percent-encoded."""
    cleaned = "".join(c for c in url if c not in "\t\r\n" and ord(c) >= 32 and ord(c) != 127)
    return "".join(c if ord(c) < 127 else quote(c) for c in cleaned).encode("ascii")


class TrackingEndpoint:
    def __init__(self, hits: Hits, host: str, port: int) -> None:
        self.hits = hits
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> bool:
        """Listen (False when the port is 0 or cannot be bound: logged, the server runs on)."""
        if not self.port:
            return False
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_port=True)
        except OSError as exc:
            log.warning("tracking handler not served: cannot listen on %s:%d (%s)", self.host, self.port, exc)
            return False
        log.info("tracking handler on http://%s:%d/t/", self.host, self.port)
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await asyncio.wait_for(reader.read(65536), _IDLE)
                    conn.receive_data(data)
                    if not data:
                        break
                    continue
                if isinstance(event, h11.Request):
                    for part in await self._answer(conn, event, address):
                        writer.write(conn.send(part) or b"")
                    await writer.drain()
                elif isinstance(event, h11.ConnectionClosed) or conn.our_state is h11.MUST_CLOSE:
                    break
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
        except (h11.RemoteProtocolError, asyncio.TimeoutError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the loop
            log.warning("tracking: connection from %s failed", address, exc_info=True)
        finally:
            writer.close()

    async def _answer(self, conn: h11.Connection, request: h11.Request, address: str) -> list[object]:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace").split("?", 1)[0]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
        kind = _PATHS.get(target[:5])
        if kind is None or method not in ("GET", "HEAD"):
            status = 404 if kind is None else 405
            return self._reply(method, status, [(b"content-type", b"text/html; charset=utf-8"), (b"allow", b"GET, HEAD")],
                               NOT_FOUND)
        url = await self.hits.hit(kind, target[5:], method=method, peer=address,
                                  forwarded_for=headers.get("x-forwarded-for", ""),
                                  user_agent=headers.get("user-agent", ""))
        if url is None:
            return self._reply(method, 404, [(b"content-type", b"text/html; charset=utf-8"), *_NO_STORE], NOT_FOUND)
        if kind == OPEN:
            return self._reply(method, 200, [(b"content-type", b"image/gif"), *_NO_STORE], GIF)
        return self._reply(method, 302, [(b"location", location(url)), (b"content-type", b"text/plain"), *_NO_STORE],
                           b"Redirecting\n")

    @staticmethod
    def _reply(method: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> list[object]:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        parts: list[object] = [h11.Response(status_code=status, headers=headers)]
        if method != "HEAD":
            parts.append(h11.Data(data=body))
        parts.append(h11.EndOfMessage())
        return parts


def tracking_endpoint(settings: Settings, engine: AsyncEngine) -> TrackingEndpoint:
    """The handler on POSTWIRE_TRACKING_HOST:POSTWIRE_TRACKING_PORT, trusting x-forwarded-for
    from POSTWIRE_TRUSTED_PROXIES."""
    hits = Hits(TrackingTokens(settings.secret_key.get_secret_value()), HitRecorder(engine),
                frozenset(settings.trusted_proxies), settings.tracking_per_ip_per_minute)
    return TrackingEndpoint(hits, settings.tracking_host, settings.tracking_port)
