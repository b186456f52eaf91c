"""How the standalone MCP server serves HTTP: uvloop, httptools, TCP_NODELAY, keep-alive.

- uvloop and httptools (C) instead of asyncio's pure-Python loop and h11: the server's CPU per
  heartbeat fell from ~1.6 to ~1.3 ms (the SDK's no-op tool: ~0.55 to ~0.45), since every
  call hands its database work to a thread and back through the loop (docs/PERFORMANCE.md).
- TCP_NODELAY on every connection. With several workers uvicorn binds the listening socket
  itself, with `proto` left at 0; accepted connections inherit it, and asyncio only turns
  Nagle's algorithm off for sockets that say IPPROTO_TCP (Kludex/uvicorn#3149, open). Each
  keep-alive answer, written as headers then body, then waited for the client's delayed ACK: a
  lone agent's calls took ~40 ms longer with `--workers 2` than with one. Setting the option per
  connection fixes it whatever the socket or the loop says.
- Keep-alive longer than an agent's beat (MCP_KEEPALIVE_SECONDS), so a beat reuses its connection.
"""

import asyncio
import socket
from typing import Any

from django.conf import settings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class NoDelayHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def uvicorn_options() -> dict[str, Any]:
    """uvicorn's settings for an MCP server (the product's, and the bench's SDK yardsticks)."""
    return {
        "loop": "uvloop",
        "http": NoDelayHttpProtocol,
        "timeout_keep_alive": settings.MCP_KEEPALIVE_SECONDS,
        "log_level": "warning",
    }


# For `anyio.run(server.serve, backend_options=…)`: the loop `uvicorn_options` names.
ANYIO_OPTIONS = {"use_uvloop": True}
