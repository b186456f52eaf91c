"""The platform's MCP server behind a front that misbehaves for the agent CLI only.

The runner and its CLI share one MCP URL; the runner's own requests carry
`X-AiWorker-Client: runner` and pass untouched. Every other request (the CLI's) is delayed
(`delay` seconds: the tools arrive late) or presents a wrong bearer token (`token`), which is
what a CLI with a broken MCP configuration does while its runner is fine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from mcpbridge.server import build_server, http_app
from tests.mcpbridge.conftest import free_socket


class Front:
    def __init__(self, app: Any, *, delay: float = 0.0, token: str = "") -> None:
        self.app, self.delay, self.token = app, delay, token
        self.cli_requests = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k.lower(), v) for k, v in scope["headers"]]
            if (b"x-aiworker-client", b"runner") not in headers:
                self.cli_requests += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.token:
                    headers = [h for h in headers if h[0] != b"authorization"]
                    headers.append((b"authorization", f"Bearer {self.token}".encode()))
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


@contextmanager
def serve_front(*, delay: float = 0.0, token: str = "") -> Iterator[tuple[str, Front]]:
    """(MCP URL, front): the MCP server, uvicorn in a thread as tests/mcpbridge serves it."""
    front = Front(http_app(build_server()), delay=delay, token=token)
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(front, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.daemon = True
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", front
    finally:
        server.should_exit = True
        thread.join(timeout=10)
