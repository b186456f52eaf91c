"""`manage.py mcp_server --transport stdio|http [--host 127.0.0.1] [--port 3100]`."""

import os
from typing import Any

import anyio
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aiworker.startup import freeze_loaded_objects
from mcpbridge.auth import TOKEN_ENV
from mcpbridge.http_protocol import ANYIO_OPTIONS, uvicorn_options
from mcpbridge.server import build_server, http_app


class Command(BaseCommand):
    help = "Run the AiWorker MCP server for agents (stdio, or streamable HTTP at /mcp)."
    # The system checks cost a second or more of startup and an agent CLI is waiting; the web
    # process and `manage.py check` run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.MCP_PORT)
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.MCP_WORKERS,
            help="HTTP worker processes (the server is stateless, so any worker serves any call).",
        )

    def handle(
        self, *args: Any, transport: str, host: str, port: int, workers: int, **options: Any
    ) -> None:
        if transport == "stdio":
            if not os.environ.get(TOKEN_ENV):
                raise CommandError(f"Set {TOKEN_ENV} to the agent's token for stdio.")
            build_server().run("stdio")  # stdout is the protocol: print nothing
            return
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        import uvicorn

        self.stderr.write(f"MCP server on http://{host}:{port}/mcp ({workers} worker(s))")
        if workers > 1:
            # One process holds one core (the GIL); each worker is a whole server of its own.
            uvicorn.run(
                "mcpbridge.asgi_http:application",
                host=host,
                port=port,
                workers=workers,
                **uvicorn_options(),  # see mcpbridge/http_protocol.py
            )
            return
        config = uvicorn.Config(
            http_app(build_server()),
            host=host,
            port=port,
            **uvicorn_options(),
        )
        freeze_loaded_objects()
        anyio.run(uvicorn.Server(config).serve, backend_options=ANYIO_OPTIONS)
