"""`mcp_server --workers N` turns Nagle's algorithm off on every connection.

uvicorn binds the listening socket of its workers itself, with `proto` 0, and asyncio then
leaves TCP_NODELAY off on accepted connections (Kludex/uvicorn#3149): each keep-alive answer
waited ~40 ms on the client's delayed ACK. These tests bind the socket the way uvicorn does and
read the option on the server's side of a real connection.
"""

import asyncio
import socket
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from mcpbridge.http_protocol import NoDelayHttpProtocol


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never reached: no request is sent
    raise AssertionError("no request expected")


def _nodelay_on_accepted_connection(protocol: type[HttpToolsProtocol]) -> int:
    config = Config(_app, host="127.0.0.1", port=0, http=protocol)
    listener = config.bind_socket()  # what `uvicorn.run(workers=N)` hands its workers
    seen: list[int] = []

    class Probe(protocol):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        state = ServerState()
        server = await loop.create_server(
            lambda: Probe(config=config, server_state=state, app_state={}), sock=listener
        )
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    return seen[0]


def test_uvicorn_alone_leaves_nagle_on_for_a_socket_it_bound():
    # If this fails, uvicorn fixed #3149: NoDelayHttpProtocol can go.
    assert _nodelay_on_accepted_connection(HttpToolsProtocol) == 0


def test_our_protocol_turns_nagle_off_on_every_connection():
    assert _nodelay_on_accepted_connection(NoDelayHttpProtocol) == 1
