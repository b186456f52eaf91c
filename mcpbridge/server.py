"""The one MCP server: stdio, standalone streamable HTTP, and mounted at /mcp in the ASGI app.

HTTP runs stateless (every POST stands alone): any replica of the MCP Deployment can answer
any call, with no sticky sessions, and a restart loses no session. Agents authenticate with
their bearer token on every request.
"""

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent
from starlette.applications import Starlette

from mcpbridge import planning_tools, tools
from mcpbridge.auth import SCOPE, AgentTokenVerifier, current_tool
from mcpbridge.identity import INSTRUCTIONS, NAME, VERSION
from mcpbridge.tool_meta import error_text

logger = logging.getLogger(__name__)
MCP_PATH = "/mcp"


class AiWorkerMCPServer(MCPServer):
    """The SDK's server, with every tool error answered as our own `[code] message` text.

    The SDK (mcp 2.3) prefixes "Error executing tool X: " to a refusal and passes pydantic's
    validation text through as it is; here the result's text is `tool_meta.error_text`.
    """

    async def _handle_call_tool(self, ctx: Any, params: Any) -> Any:
        context = Context(
            request_context=ctx,
            mcp_server=self,
            input_params=params,
            subscriptions=self._subscriptions,
        )
        current_tool.set(params.name)
        try:
            return await self.call_tool(params.name, params.arguments or {}, context)
        except MCPError:
            raise
        except Exception as exc:
            text = error_text(params.name, exc)
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def build_server() -> MCPServer:
    server = AiWorkerMCPServer(
        NAME,
        version=VERSION,
        instructions=INSTRUCTIONS,
        # issuer_url is required by the SDK but unused: tokens are issued by AiWorker itself
        # (agents.services.agent_create), not by an OAuth server.
        auth=AuthSettings(
            issuer_url="http://localhost",  # type: ignore[arg-type]
            resource_server_url=None,
            required_scopes=[SCOPE],
        ),
        token_verifier=AgentTokenVerifier(),
    )
    tools.register(server)
    planning_tools.register(server)
    # Build the channel layer now (importing channels_redis takes a moment), not in the
    # first agent call that broadcasts.
    get_channel_layer()
    return server


def http_app(server: MCPServer) -> Starlette:
    # DNS-rebinding protection guards unauthenticated local servers against web pages; every
    # request here needs an agent's bearer token a page cannot have, and the Host header is a
    # cluster Service name in Kubernetes, so the Host allow-list would only get in the way.
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        # No tool streams progress, so each answer is one JSON body: SSE framing cost the
        # server about a millisecond of CPU a call (docs/PERFORMANCE.md).
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


class MountedMcp:
    """The MCP app for a server that sends no ASGI lifespan events (daphne, STACK.md).

    The SDK starts its session manager in the Starlette lifespan; here the first request
    starts it in the serving loop instead and it runs for the life of the process.
    """

    def __init__(self) -> None:
        self.server = build_server()
        self.app = http_app(self.server)
        self._ready: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None

    async def _run_manager(self, ready: asyncio.Event) -> None:
        try:
            async with self.server.session_manager.run():
                ready.set()
                await asyncio.Event().wait()  # until the process ends
        finally:
            # Failed to start (or stopped): let waiting requests through to a clear 500
            # instead of hanging them.
            ready.set()

    async def _ensure_started(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
            self._runner = asyncio.create_task(self._run_manager(self._ready))
        await self._ready.wait()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._ensure_started()
        await self.app(scope, receive, send)


def is_mcp_path(path: str) -> bool:
    return settings.MCP_MOUNT_IN_ASGI and (path == MCP_PATH or path.startswith(MCP_PATH + "/"))
