"""An httpx transport that checks every address it connects to: the host is resolved
at connect time and refused if any address is loopback, private, link-local,
multicast, unspecified or otherwise not public (unless allowed). The check and the
connection use the same resolution, so a DNS answer cannot change in between."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from core.webhooks.urls import AddressRefused, resolve_allowed


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_allowed(host, port, self.allow_private)
        except AddressRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:  # TLS still uses the URL's host name (SNI, certificate)
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for webhooks")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guarded backend (no proxies from the environment)."""

    def __init__(self, allow_private: bool, max_connections: int = 100) -> None:
        super().__init__(trust_env=False)
        # Replace the pool httpx built with the same one over our backend; httpx has no
        # public knob for the network backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private),
        )


def make_client(allow_private: bool, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": "Postwire-Webhooks/1"},
    )
