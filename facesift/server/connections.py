"""How Uvicorn runs the app: connection-level limits Uvicorn does not have by itself.

Uvicorn times out idle keep-alive connections but not a client that sends its headers slowly (a line every
few seconds keeps a connection, and a slot, forever), and it accepts any number of connections. The
protocol below closes a connection whose request headers are not complete within ``header_timeout``
seconds and refuses connections beyond ``max_connections``; the body's deadline is the ASGI layer's
(``middleware.py``), since the app reads the body.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from facesift.server.config import ServiceConfig


class GuardedH11Protocol(H11Protocol):
    """Uvicorn's h11 protocol with a header deadline and a connection limit (set by ``server_config``)."""

    header_timeout: float = 10.0
    max_connections: int = 256

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            self.logger.warning("Refused a connection: %d open, the limit is %d", len(self.connections) - 1, self.max_connections)
            transport.close()
            return
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if getattr(self, "_header_deadline", None) is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_header_deadline()  # a request is being served: its body has its own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request's headers, on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


#: glibc's mallopt parameter for the size from which allocations are mmap'd (and so returned when freed)
_M_MMAP_THRESHOLD = -3


def release_large_buffers(threshold: int = 1 << 20) -> bool:
    """Make glibc hand large freed buffers (decoded photos) back to the system at once.

    By default glibc raises its mmap threshold to the largest buffer freed so far (up to 32 MB), so after
    one big photo every later image buffer comes from the heap and the freed memory stays with the process:
    a service that decoded a few 40 Mpx photos kept over a gigabyte for good. Fixing the threshold keeps
    the resident size near what the current requests need. Called by ``facesift serve`` for its own process
    (a library import never changes the allocator); False where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def server_config(app: Any, config: ServiceConfig, **options: Any) -> uvicorn.Config:
    """The Uvicorn settings for ``app`` under ``config`` (host and port, timeouts, limits); ``options`` override."""
    protocol = type("FacesiftH11Protocol", (GuardedH11Protocol,),
                    {"header_timeout": config.header_timeout, "max_connections": config.max_connections})
    settings: dict[str, Any] = {"host": config.host, "port": config.port, "http": protocol, "access_log": False,
                                "timeout_keep_alive": config.keep_alive_timeout, "log_level": "info"}
    return uvicorn.Config(app, **(settings | options))
