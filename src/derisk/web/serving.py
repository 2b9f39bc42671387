"""Running the dashboard under uvicorn: the one place that knows the HTTP server.

Two things uvicorn leaves open are closed here:

* **Half-open connections.** uvicorn times out an idle keep-alive connection, but not one that
  never completes its request head (a client that connects and sends nothing, or a header line a
  minute): each holds a socket and a protocol object for ever. :class:`HeadTimeoutProtocol` closes a
  connection whose request head is not complete ``HEAD_TIMEOUT`` seconds after it opened, or after
  the previous response on it ended.
* **Forwarded addresses.** uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default, so any
  local user could forge the client address in the audit log. derisk trusts no proxy unless
  ``--trusted-proxies`` names it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a client has to send a complete request head.
HEAD_TIMEOUT: Final = 10.0
#: Connections and requests served at once; beyond that uvicorn answers 503 at once.
MAX_CONCURRENCY: Final = 256


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request head."""

    head_timeout: float = HEAD_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:
            self._disarm()  # a request head arrived complete
        elif before is None or before.response_complete:
            self._arm()  # bytes of a head that is not complete yet

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # uvicorn's keep-alive timer takes over until the next bytes arrive

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    trusted_proxies: tuple[str, ...] = (),
    head_timeout: float = HEAD_TIMEOUT,
) -> None:
    """Serve ``app`` until interrupted."""
    import uvicorn

    protocol = type("DeriskH11Protocol", (HeadTimeoutProtocol,), {"head_timeout": head_timeout})

    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) if trusted_proxies else None,
        limit_concurrency=MAX_CONCURRENCY,
        timeout_keep_alive=5,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
