"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection, for `mcp_server --workers N`.

With several workers uvicorn binds the listening socket itself, with `proto` left at 0; accepted
connections inherit it, and asyncio only turns Nagle's algorithm off for sockets that say
IPPROTO_TCP (Kludex/uvicorn#3149, open). Each keep-alive answer, written as headers then body,
then waited for the client's delayed ACK: a lone agent's calls took ~40 ms longer with
`--workers 2` than with one. Setting the option per connection fixes it whatever the socket says.
"""

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
